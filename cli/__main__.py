"""`python -m cli <subcommand>`: the same as the `tinytrail` script."""

import sys

from cli.main import main

sys.exit(main())
