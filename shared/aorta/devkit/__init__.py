"""The operator development kit: scaffold an operator folder, run it without the platform.

`aorta operator init NAME` calls `init_operator`; `aorta operator run-local` calls `run_local`.
"""

from aorta.devkit.local_run import read_env_file, run_local
from aorta.devkit.scaffold import init_operator

__all__ = ["init_operator", "read_env_file", "run_local"]
