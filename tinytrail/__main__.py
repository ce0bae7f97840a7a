"""`python3 -m tinytrail ...`: the same command as the `tinytrail` script (tinytrail/cli.py),
for when the script is not on PATH."""

from __future__ import annotations

import sys

from tinytrail.cli import main

if __name__ == "__main__":
    sys.exit(main())
