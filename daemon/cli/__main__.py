"""``python -m daemon.cli``: the ``tradelog`` command line."""

import sys

from daemon.cli.main import main

sys.exit(main())
