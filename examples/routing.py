"""Routing: static paths, parameters with converters, regular expressions, methods, views,
mounted applications and URLs built from route names."""

from tremolo import Tremolo, View

app = Tremolo()


# --8<-- [start:static]
@app.route('/')
async def index(**server):
    return 'Home\n'


@app.route('/about', name='about')
async def about(**server):
    return 'About\n'
# --8<-- [end:static]


# --8<-- [start:params]
@app.route('/user/{username}', name='user')
async def user(username):
    return f'Hello, {username}\n'  # one path segment, as a str


@app.route('/item/{item_id:int}')
async def item(item_id):
    return {'item_id': item_id}  # /item/42 gives 42, an int; /item/abc is a 404


@app.route('/scale/{factor:float}')
async def scale(factor):
    return {'doubled': factor * 2}


@app.route('/order/{order_id:uuid}')
async def order(order_id):
    return {'order': str(order_id)}  # a uuid.UUID: with or without dashes in the URL


@app.route('/files/{file_path:path}', name='file')
async def file(file_path):
    return {'file': file_path}  # the rest of the path, slashes included
# --8<-- [end:params]


# --8<-- [start:regex]
@app.route(r'^/archive/(?P<year>[0-9]{4})/(?P<month>[0-9]{2})$')
async def archive(year, month):
    return {'year': year, 'month': month}  # named groups, as strings
# --8<-- [end:regex]


# --8<-- [start:methods]
@app.route('/articles', methods=['GET', 'POST'])
async def articles(request, response):
    if request.method == 'POST':
        response.set_status(201)
        return {'created': (await request.json())['title']}
    return {'articles': []}


@app.delete('/articles/{article_id:int}')
async def delete_article(article_id, response):
    response.set_status(204)
# --8<-- [end:methods]


# --8<-- [start:view]
@app.route('/books/{book_id:int}', name='book')
class Book(View):
    async def get(self, book_id):
        return {'id': book_id, 'title': f'Book {book_id}'}

    async def put(self, book_id, request):
        return {'id': book_id, 'title': (await request.json())['title']}

    async def delete(self, book_id, response):
        response.set_status(204)
# --8<-- [end:view]


# --8<-- [start:mount]
admin = Tremolo('admin')


@admin.route('/dashboard', name='dashboard')
async def dashboard(**server):
    return 'Admin dashboard\n'


@admin.on_request
async def admins_only(request, response):
    if request.headers.get('x-role') != 'admin':
        response.set_status(403)
        return 'Admins only\n'


app.mount('/admin', admin)
# --8<-- [end:mount]


# --8<-- [start:url-for]
@app.route('/links')
async def links(app):
    return {
        'about': app.url_for('about'),
        'user': app.url_for('user', username='Ada Lovelace'),
        'file': app.url_for('file', file_path='docs/guide.md'),
        'book': app.url_for('book', book_id=7),
        'dashboard': app.url_for('dashboard'),
    }
# --8<-- [end:url-for]
