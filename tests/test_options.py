"""Options: every value checked where it is given, naming the option and the type it must
have; text (environment variables) converted as the command line would."""

from __future__ import annotations

import ssl

import pytest

from tremolo import Tremolo
from tremolo.options import Options, option_from_text, options_from_environ


@pytest.mark.parametrize(('options', 'error', 'message'), [
    ({'port': 'abc'}, TypeError, "option 'port' must be an integer, not 'abc' (str)"),
    ({'port': '8000'}, TypeError, "option 'port' must be an integer, not '8000' (str)"),
    ({'worker_num': 2.5}, TypeError, "option 'worker_num' must be an integer, not 2.5 (float)"),
    ({'max_body_size': '1M'}, TypeError,
     "option 'max_body_size' must be an integer, not '1M' (str)"),
    ({'debug': 'yes'}, TypeError, "option 'debug' must be True or False, not 'yes' (str)"),
    ({'body_timeout': '30'}, TypeError, "option 'body_timeout' must be a number, not '30'"),
    ({'backlog': True}, TypeError, "option 'backlog' must be an integer, not True (bool)"),
    ({'ssl': 'cert.pem'}, TypeError,
     "option 'ssl' must be an ssl.SSLContext (see the deployment page), not 'cert.pem' (str)"),
    ({'listen': [3.5]}, TypeError,
     "option 'listen' holds ports (int) and addresses (str), not 3.5 (float)"),
    ({'port': 70000}, ValueError, "option 'port' must be between 0 and 65535, not 70000"),
    ({'thread_pool_size': 0}, ValueError, "option 'thread_pool_size' must be at least 1, not 0"),
    ({'workers': 2}, TypeError, 'unknown option(s): workers; valid options are: '),
])
def test_a_bad_option_names_itself_and_what_it_must_be(options, error, message):
    with pytest.raises(error) as info:
        Options.from_kwargs(**options)
    assert str(info.value).startswith(message)


def test_run_checks_its_options_before_serving():
    app = Tremolo()
    with pytest.raises(TypeError, match=r"^option 'port' must be an integer, not 'abc'"):
        app.run(port='abc')
    with pytest.raises(TypeError, match=r"^option 'worker_num' must be an integer, not 2.5"):
        app.run(port=0, worker_num=2.5)


def test_a_real_ssl_context_is_accepted():
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    assert Options(ssl=context).ssl is context


@pytest.mark.parametrize(('kind', 'text', 'value'), [
    ('int', '8000', 8000),
    ('int', ' 42 ', 42),
    ('float', '2.5', 2.5),
    ('float', '30', 30.0),
    ('bool', 'true', True), ('bool', 'Yes', True), ('bool', 'on', True), ('bool', '1', True),
    ('bool', 'FALSE', False), ('bool', 'no', False), ('bool', 'off', False), ('bool', '0', False),
    ('str', ' spaced ', ' spaced '),
    ('str', '', ''),  # server_name='' omits the Server header: an empty value is a value
    ('list', '8001, /run/app.sock,,', ['8001', '/run/app.sock']),
])
def test_text_is_converted_as_the_command_line_would(kind, text, value):
    converted = option_from_text('name', kind, text)
    assert converted == value and type(converted) is type(value)


@pytest.mark.parametrize(('kind', 'text', 'message'), [
    ('int', '1M', "option 'name' must be an integer, not '1M'"),
    ('int', '2.5', "option 'name' must be an integer, not '2.5'"),
    ('int', '', "option 'name' must be an integer, not ''"),
    ('float', 'fast', "option 'name' must be a number, not 'fast'"),
    ('bool', 'maybe', "option 'name' must be true or false (or yes/no, on/off, 1/0), not "
                      "'maybe'"),
])
def test_text_that_is_not_a_value_names_the_option(kind, text, message):
    with pytest.raises(ValueError) as info:
        option_from_text('name', kind, text)
    assert str(info.value) == message


def test_environment_variables_set_options():
    environ = {
        'TREMOLO_PORT': '8001', 'TREMOLO_WORKER_NUM': '4', 'TREMOLO_DEBUG': 'yes',
        'TREMOLO_LISTEN': '8002,/tmp/app.sock', 'TREMOLO_TRUSTED_PROXIES': '10.0.0.0/8, unix',
        'TREMOLO_DOWNLOAD_RATE': '1e6', 'TREMOLO_SERVER_NAME': '',
        'TREMOLO_SSL': 'ignored: ssl has no flag', 'TREMOLO_RELOADER_CHILD': '1', 'PORT': '9',
    }
    values = options_from_environ(environ)
    assert values == {
        'port': 8001, 'worker_num': 4, 'debug': True, 'listen': ['8002', '/tmp/app.sock'],
        'trusted_proxies': ['10.0.0.0/8', 'unix'], 'download_rate': 1e6, 'server_name': '',
    }
    options = Options.from_kwargs(**values)
    assert (options.port, options.worker_num, options.log_level) == (8001, 4, 'debug')


@pytest.mark.parametrize(('environ', 'message'), [
    ({'TREMOLO_PORT': 'abc'}, "TREMOLO_PORT: option 'port' must be an integer, not 'abc'"),
    ({'TREMOLO_PORT': '70000'},
     "TREMOLO_PORT: option 'port' must be between 0 and 65535, not 70000"),
    ({'TREMOLO_RATE_SCOPE': 'planet'},
     "TREMOLO_RATE_SCOPE: option 'rate_scope' must be one of 'connection', 'client', "),
])
def test_a_bad_environment_variable_names_the_variable(environ, message):
    with pytest.raises(ValueError) as info:
        options_from_environ(environ)
    assert str(info.value).startswith(message)
    assert str(info.value).endswith(("not 'abc'", 'not 70000', "not 'planet'"))
