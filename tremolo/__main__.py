"""``python -m tremolo module:app [options]``."""

from .cli import main

if __name__ == '__main__':
    main()
