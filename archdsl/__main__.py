"""`python -m archdsl` runs the command line."""

import sys

from archdsl.cli import main

sys.exit(main())
