"""python -m tunixrt.cli"""

import sys

from . import main

sys.exit(main())
