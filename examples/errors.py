"""Errors: HTTP exceptions, redirects and error handlers."""

from tremolo import HTTPException, NotFound, Redirect, TooManyRequests, Tremolo

app = Tremolo()

BOOKS = {1: 'Dune', 2: 'Solaris'}


# --8<-- [start:raise]
@app.route('/books/{book_id:int}')
async def book(book_id):
    if book_id not in BOOKS:
        raise NotFound(f'no book {book_id}')  # 404, with this message as the body
    return {'id': book_id, 'title': BOOKS[book_id]}


@app.route('/search')
async def search(request):
    if 'q' not in request.query:
        raise HTTPException('say what you are looking for', status=400)
    raise TooManyRequests('slow down', headers={'Retry-After': '3'})


@app.route('/old-books/{book_id:int}')
async def old_book(book_id):
    raise Redirect(f'/books/{book_id}', status=301)


@app.route('/login')
async def login(response):
    return response.redirect('/books/1')  # 302, as a result rather than an exception
# --8<-- [end:raise]


# --8<-- [start:handlers]
class OutOfStock(Exception):
    pass


@app.route('/buy/{book_id:int}')
async def buy(book_id):
    raise OutOfStock(BOOKS.get(book_id, 'that book'))


@app.route('/crash')
async def crash():
    raise RuntimeError('the database password is hunter2')  # never shown to the client


@app.error(404)
async def not_found(exc, request):
    return {'error': str(exc), 'path': request.path}  # the status stays 404


@app.error(OutOfStock)
async def out_of_stock(exc, response):
    response.set_status(409)
    return {'error': f'{exc} is out of stock'}
# --8<-- [end:handlers]
