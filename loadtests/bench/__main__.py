"""`python -m loadtests.bench`: see `loadtests.bench.runner`."""

import sys

from loadtests.bench.runner import main

sys.exit(main())
