"""`python -m roomctl.cli`: the same as the `roomctl` command."""

import sys

from roomctl.cli import main

if __name__ == "__main__":  # not when a worker process started with `spawn` imports it again
    sys.exit(main())
