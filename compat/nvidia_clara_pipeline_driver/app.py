"""`python -m nvidia_clara_pipeline_driver.app SCRIPT [ARGS...]`: Clara's operator entry point.

The same runner as `aorta.driver.app`, under the module name Clara operator images start.
"""

import sys

from aorta.driver.app import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m nvidia_clara_pipeline_driver.app"))
