"""Logging: the access log in a file of its own, the server's messages on stderr."""

import logging.config

from tremolo import Tremolo

# --8<-- [start:config]
LOGGING = {
    'version': 1,
    'disable_existing_loggers': False,
    'formatters': {
        'access': {'format': '%(asctime)s %(message)s'},
    },
    'handlers': {
        'access_file': {
            'class': 'logging.FileHandler',
            'filename': 'access.log',
            'formatter': 'access',
        },
    },
    'loggers': {
        'tremolo.access': {'handlers': ['access_file'], 'propagate': False},
    },
}
# --8<-- [end:config]

app = Tremolo()


@app.route('/hello')
async def hello(**server):
    return 'Hello world!'


if __name__ == '__main__':
    # --8<-- [start:run]
    logging.config.dictConfig(LOGGING)
    app.run('127.0.0.1', 8000)
    # --8<-- [end:run]
