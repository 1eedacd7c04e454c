"""Run the command line as ``python -m fleetactor``."""

import sys

from fleetactor.cli import main

sys.exit(main())
