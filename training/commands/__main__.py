"""`python -m multisensory.training.commands ...` runs the `multisensory` command."""

import sys

from . import main

sys.exit(main())
