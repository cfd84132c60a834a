"""``python -m dnmsnn`` = the ``dnmsnn`` command."""
import sys

from .cli import main

sys.exit(main())
