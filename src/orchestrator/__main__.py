"""`python -m orchestrator` runs the CLI."""

import sys

from orchestrator.cli import main

sys.exit(main())
