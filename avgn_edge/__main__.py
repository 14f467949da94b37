"""``python -m avgn_edge ...`` = ``avgn-edge ...`` (what torchrun launches: ``torchrun ... -m avgn_edge train``)."""

import sys

from .cli.main import main

sys.exit(main())
