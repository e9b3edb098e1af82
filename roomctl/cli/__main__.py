"""`python -m roomctl.cli`: the same as the `roomctl` command."""

import sys

from roomctl.cli import main

sys.exit(main())
