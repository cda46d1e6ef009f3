"""`python -m acr_ci` runs the CLI."""

import sys

from acr_ci.cli import main

sys.exit(main())
