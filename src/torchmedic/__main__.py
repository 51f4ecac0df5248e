"""`python -m torchmedic ...` runs the same command as `torchmedic ...`."""

import sys

from torchmedic.cli import main

sys.exit(main())
