"""``python -m sentinel`` is the ``sentinel`` command."""

import sys

from sentinel.cli.main import main

sys.exit(main())
