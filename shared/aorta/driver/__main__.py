"""`python -m aorta.driver SCRIPT [ARGS...]`: the same runner as `aorta.driver.app`."""

import sys

from aorta.driver.app import main

sys.exit(main(prog="python -m aorta.driver"))
