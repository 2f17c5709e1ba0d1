"""Forms read whole: urlencoded and multipart/form-data (tremolo.forms)."""

from __future__ import annotations

import pytest

from tremolo.exceptions import BadRequest, PayloadTooLarge, UnsupportedMediaType
from tremolo.forms import FormData, FormLimits, UploadedFile, parse_content_type, parse_form

URLENCODED = 'application/x-www-form-urlencoded'

# -- parse_content_type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('value', 'expected'),
    [
        ('', ('', {})),
        ('text/plain', ('text/plain', {})),
        (' Text/HTML ; Charset = "UTF-8" ; q=1', ('text/html', {'charset': 'UTF-8', 'q': '1'})),
        ('multipart/form-data;boundary=abc', ('multipart/form-data', {'boundary': 'abc'})),
        ('multipart/form-data; boundary="a;b c"', ('multipart/form-data', {'boundary': 'a;b c'})),
        ('a/b; x="q\\"uo\\\\te"; y=2', ('a/b', {'x': 'q"uo\\te', 'y': '2'})),
        ('a/b; novalue; k=v', ('a/b', {'k': 'v'})),
        ('form-data; name="f"; filename="a b.txt"',
         ('form-data', {'name': 'f', 'filename': 'a b.txt'})),
    ],
)
def test_parse_content_type(value, expected):
    assert parse_content_type(value) == expected


# -- urlencoded -----------------------------------------------------------------------------------


def test_urlencoded_repeated_keys_and_blank_values():
    form = parse_form(URLENCODED, b'a=1&b=&a=2&c&d=x+y%21')
    assert isinstance(form, FormData)
    assert form.multi_items() == [('a', '1'), ('b', ''), ('a', '2'), ('c', ''), ('d', 'x y!')]
    assert form.getlist('a') == ['1', '2']
    assert form['b'] == '' and form['c'] == ''
    assert form.files == {}


def test_urlencoded_empty_body():
    form = parse_form(URLENCODED, b'')
    assert (form.multi_items(), form.files) == ([], {})


def test_urlencoded_media_type_case_and_charset():
    form = parse_form('Application/X-WWW-Form-URLEncoded; charset=latin-1', b'name=caf\xe9')
    assert form['name'] == 'caf\u00e9'
    form = parse_form(URLENCODED + '; charset=UTF-8', 'k=caf\u00e9'.encode())
    assert form['k'] == 'caf\u00e9'


@pytest.mark.parametrize(
    ('content_type', 'body'),
    [
        (URLENCODED, b'name=caf\xe9'),  # not UTF-8
        (URLENCODED + '; charset=no-such-charset', b'a=1'),
    ],
)
def test_urlencoded_undecodable(content_type, body):
    with pytest.raises(BadRequest) as info:
        parse_form(content_type, body)
    assert info.value.status == 400


def test_urlencoded_max_fields():
    assert len(parse_form(URLENCODED, b'a=1&b=2&c=3', max_fields=3)) == 3
    with pytest.raises(PayloadTooLarge) as info:
        parse_form(URLENCODED, b'a=1&b=2&c=3&d=4', max_fields=3)
    assert info.value.status == 413


# -- multipart ------------------------------------------------------------------------------------


_XYZ = 'multipart/form-data; boundary=XyZ'


def multipart(*parts: bytes, boundary: bytes = b'XyZ', end: bytes = b'--\r\n') -> bytes:
    """A multipart body from ``parts`` (each: header lines, CRLF, content)."""
    body = b''.join(b'--' + boundary + b'\r\n' + part + b'\r\n' for part in parts)
    return body + b'--' + boundary + end


def field(name: str, value: bytes, *headers: bytes) -> bytes:
    disposition = b'Content-Disposition: form-data; name="%s"\r\n' % name.encode()
    return disposition + b''.join(h + b'\r\n' for h in headers) + b'\r\n' + value


_ONE = multipart(field('a', b'1'))


def test_multipart_fields_and_files():
    body = multipart(
        field('title', b'Hello'),
        field('title', b'Again'),
        b'Content-Disposition: form-data; name="doc"; filename="notes.txt"\r\n'
        b'Content-Type: text/plain\r\n\r\nfile\r\ncontent\r\n',
        b'Content-Disposition: form-data; name="doc"; filename="raw.bin"\r\n\r\n\x00\xff\r\n--X',
        field('empty', b''),
    )
    form = parse_form('multipart/form-data; boundary=XyZ', body)
    assert form.multi_items() == [('title', 'Hello'), ('title', 'Again'), ('empty', '')]
    assert list(form.files) == ['doc']
    notes, raw = form.files['doc']
    assert isinstance(notes, UploadedFile)
    assert (notes.name, notes.filename, notes.content_type) == ('doc', 'notes.txt', 'text/plain')
    assert notes.data == b'file\r\ncontent\r\n'
    assert notes.size == 15
    assert notes.headers == {
        'content-disposition': 'form-data; name="doc"; filename="notes.txt"',
        'content-type': 'text/plain',
    }
    assert repr(notes) == "<UploadedFile 'doc' 'notes.txt' 15 bytes>"
    assert (raw.filename, raw.content_type, raw.data) == (
        'raw.bin', 'application/octet-stream', b'\x00\xff\r\n--X',
    )


def test_multipart_boundary_in_quotes_with_special_characters():
    boundary = b"----Web Kit'()+_,-./:=?"
    body = multipart(field('a', b'1'), boundary=boundary)
    form = parse_form(f'multipart/form-data; boundary="{boundary.decode()}"', body)
    assert form.multi_items() == [('a', '1')]


def test_multipart_crlf_inside_content():
    body = multipart(field('text', b'\r\nline 1\r\n\r\nline 2\r\n--not-the-boundary\r\n'))
    form = parse_form('multipart/form-data; boundary=XyZ', body)
    assert form['text'] == '\r\nline 1\r\n\r\nline 2\r\n--not-the-boundary\r\n'


def test_multipart_preamble_epilogue_and_padding():
    body = (
        b'This is the preamble.\r\n--XyZ \t\r\n' + field('a', b'1') + b'\r\n--XyZ\r\n'
        + field('b', b'2') + b'\r\n--XyZ--\r\nThis is the epilogue, ignored. --XyZ junk'
    )
    form = parse_form('multipart/form-data; boundary=XyZ', body)
    assert form.multi_items() == [('a', '1'), ('b', '2')]


def test_multipart_final_boundary_without_crlf():
    body = multipart(field('a', b'1'), end=b'--')
    assert parse_form('multipart/form-data; boundary=XyZ', body)['a'] == '1'


def test_multipart_no_parts():
    form = parse_form('multipart/form-data; boundary=XyZ', b'--XyZ--\r\n')
    assert (form.multi_items(), form.files) == ([], {})


def test_multipart_field_charset_and_utf8_filename():
    body = multipart(
        field('latin', b'caf\xe9', b'Content-Type: text/plain; charset=latin-1'),
        field('utf', 'caf\u00e9'.encode()),
        'Content-Disposition: form-data; name="f"; filename="r\u00e9sum\u00e9.pdf"\r\n\r\n%'
        .encode(),
    )
    form = parse_form('multipart/form-data; boundary=XyZ', body)
    assert form['latin'] == 'caf\u00e9' and form['utf'] == 'caf\u00e9'
    assert form.files['f'][0].filename == 'r\u00e9sum\u00e9.pdf'
    assert form.files['f'][0].data == b'%'


def test_multipart_first_delimiter_must_start_a_line():
    # RFC 2046 §5.1.1: a delimiter starts the body or follows a CRLF. Here the first one
    # follows a bare LF, so it is preamble; the next one closes the body: no field at all.
    body = b'x\n--XyZ\r\n' + field('a', b'1') + b'\r\n--XyZ--\r\n'
    assert parse_form(_XYZ, body).multi_items() == []
    with pytest.raises(BadRequest, match='final boundary'):
        parse_form(_XYZ, b'preamble--XyZ\r\n' + field('a', b'1') + b'\r\n')


def test_multipart_max_fields_counts_files():
    body = multipart(
        field('a', b'1'),
        b'Content-Disposition: form-data; name="f"; filename="x"\r\n\r\ny',
        field('b', b'2'),
    )
    assert len(parse_form('multipart/form-data; boundary=XyZ', body, max_fields=3)) == 2
    with pytest.raises(PayloadTooLarge) as info:
        parse_form('multipart/form-data; boundary=XyZ', body, max_fields=2)
    assert info.value.status == 413




@pytest.mark.parametrize(
    ('content_type', 'body', 'message'),
    [
        pytest.param('multipart/form-data', _ONE, 'valid boundary', id='no-boundary'),
        pytest.param(
            'multipart/form-data; boundary=""', _ONE, 'valid boundary', id='empty-boundary'
        ),
        pytest.param(
            'multipart/form-data; boundary=' + 'b' * 71,
            multipart(field('a', b'1'), boundary=b'b' * 71), 'valid boundary',
            id='boundary-too-long',
        ),
        pytest.param(
            'multipart/form-data; boundary=Other', _ONE, 'final boundary',
            id='boundary-absent-from-body',
        ),
        pytest.param(_XYZ, b'', 'final boundary', id='empty-body'),
        pytest.param(
            _XYZ, _ONE[:-len(b'\r\n--XyZ--\r\n')], 'final boundary',
            id='missing-final-boundary',
        ),
        pytest.param(
            _XYZ, multipart(field('a', b'1'), end=b''), 'final boundary',
            id='final-boundary-not-closed',
        ),
        pytest.param(
            _XYZ, multipart(field('a', b'1'), end=b'\r\n'), 'final boundary',
            id='no-close-delimiter',
        ),
        pytest.param(
            _XYZ, b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n', 'final boundary',
            id='headers-never-end',
        ),
        pytest.param(
            _XYZ, multipart(b'Content-Type: text/plain\r\n\r\nvalue'), 'Content-Disposition',
            id='no-content-disposition',
        ),
        pytest.param(
            _XYZ, multipart(b'\r\nvalue'), 'Content-Disposition', id='no-part-headers'
        ),
        pytest.param(
            _XYZ, multipart(b'Content-Disposition: attachment; name="a"\r\n\r\nv'),
            'form-data name', id='disposition-not-form-data',
        ),
        pytest.param(
            _XYZ, multipart(b'Content-Disposition: form-data\r\n\r\nv'), 'form-data name',
            id='disposition-without-name',
        ),
        pytest.param(
            _XYZ, multipart(b'Content-Disposition: form-data; name="a"\r\nJunk\r\n\r\nv'),
            'part header', id='part-header-without-colon',
        ),
        pytest.param(
            _XYZ, multipart(b'Content-Disposition: form-data; name="a"\r\n x\r\n\r\nv'),
            'part header', id='obs-fold',
        ),
        pytest.param(
            _XYZ, b'--XyZjunk\r\n' + field('a', b'1') + b'\r\n--XyZ--', 'delimiter',
            id='junk-after-delimiter',
        ),
        pytest.param(
            _XYZ, multipart(field('a', b'caf\xe9')), 'not valid text', id='field-not-utf8'
        ),
        pytest.param(
            _XYZ, multipart(field('a', b'1', b'Content-Type: text/plain; charset=nope')),
            'not valid text', id='field-unknown-charset',
        ),
    ],
)
def test_multipart_malformed(content_type, body, message):
    with pytest.raises(BadRequest, match=message) as info:
        parse_form(content_type, body)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ('body', 'limits', 'message'),
    [
        pytest.param(multipart(field('a', b'1', b'X-Big: ' + b'x' * 9000)), {},
                     'part headers too large', id='part-headers'),
        pytest.param(b'p' * 20000 + b'\r\n' + _ONE, {}, 'preamble too large', id='preamble'),
        pytest.param(_ONE + b'e' * 20000, {}, 'epilogue too large', id='epilogue'),
        pytest.param(multipart(field('a', b'x' * 101)), {'max_field_size': 100},
                     "field 'a' too large", id='field-size'),
        pytest.param(multipart(b'Content-Disposition: form-data; name="f"; filename="x"\r\n'
                               b'\r\n' + b'x' * 101), {'max_part_size': 100},
                     'part too large', id='part-size'),
        pytest.param(multipart(*[field('a', b'1')] * 4), {'max_fields': 3}, 'too many',
                     id='part-count'),
        pytest.param(b'a=1&b=' + b'x' * 101, {'max_field_size': 100}, "field 'b' too large",
                     id='urlencoded-field-size'),
    ],
)
def test_form_limits(body, limits, message):
    content_type = URLENCODED if body.startswith(b'a=') else _XYZ
    with pytest.raises(PayloadTooLarge, match=message) as info:
        parse_form(content_type, body, limits=FormLimits(**limits))
    assert info.value.status == 413
    within = {name: value * 2 for name, value in limits.items()}
    if within and 'preamble' not in message and 'epilogue' not in message:
        parse_form(content_type, body, limits=FormLimits(**within))  # just under: accepted


# -- unsupported ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    'content_type', ['', 'text/plain', 'application/json', 'multipart/mixed; boundary=x']
)
def test_unknown_media_type(content_type):
    with pytest.raises(UnsupportedMediaType) as info:
        parse_form(content_type, b'a=1')
    assert info.value.status == 415
