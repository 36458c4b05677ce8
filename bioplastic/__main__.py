"""``python -m bioplastic``: the ``bioplastic`` command line (:mod:`bioplastic.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
