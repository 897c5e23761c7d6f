"""``python -m datalayer``: the same command line as the ``datalayer`` script."""

import sys

from datalayer.cli import main

if __name__ == "__main__":
    sys.exit(main())
