"""``python -m metrica`` is the ``metrica`` command."""

import sys

from metrica.cli import main

sys.exit(main())
