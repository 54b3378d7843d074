"""`python -m codeintel` is the `codeintel` command."""

import sys

from codeintel.cli import main

sys.exit(main())
