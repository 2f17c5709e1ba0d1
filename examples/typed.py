"""A typed application: every function annotated, and `mypy --strict` finds nothing to say.

Injection goes by parameter name, so annotations are for the type checker (and for the
providers that are looked up by type).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from tremolo import Context, NotFound, Request, Response, Tremolo

app = Tremolo()


# --8<-- [start:typed]
@dataclass
class Book:
    id: int
    title: str


BOOKS = {1: Book(1, 'Dune'), 2: Book(2, 'Solaris')}


@app.provide(Book)
async def current_book(request: Request) -> Book:
    book_id: int = request.params['book_id']
    if book_id not in BOOKS:
        raise NotFound(f'no book {book_id}')
    return BOOKS[book_id]


@app.on_request
async def identify(request: Request, context: Context) -> None:
    context.reader = request.headers.get('x-reader', 'anonymous')  # an attribute of your own


@app.route('/books/{book_id:int}', name='book')
async def show(book: Book, context: Context) -> dict[str, Any]:  # the book, by its type
    return {'id': book.id, 'title': book.title, 'reader': context.reader}


@app.route('/books/{book_id:int}/words')
async def words(book: Book, response: Response) -> AsyncIterator[bytes]:
    response.set_header('X-Book', str(book.id))
    for word in book.title.split():
        yield word.encode() + b'\n'


@app.post('/books')
async def add(request: Request, response: Response) -> dict[str, Any]:
    data = await request.json()
    book = Book(max(BOOKS) + 1, str(data['title']))
    BOOKS[book.id] = book
    response.set_status(201)
    response.set_header('Location', app.url_for('book', book_id=book.id))
    return {'id': book.id}
# --8<-- [end:typed]
