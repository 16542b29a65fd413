"""Run Python code under NVIDIA's Clara client (`nvidia-clara-client`), in its own process.

NVIDIA's generated modules need protobuf 3.20 and register the same proto names as
`aorta.api`, so they can never be imported into our process (docs/clara-compatibility.md,
"NVIDIA's client and its protobuf"). `make setup` installs the client into a separate
virtualenv, `.clara-venv`; tests hand it code as text and read back what it prints. Every
end-to-end test that drives NVIDIA's client goes through here.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
# Names the interpreter to use instead of the checkout's .clara-venv (e.g. on CI images).
CLARA_PYTHON_ENV = "AORTA_CLARA_PYTHON"


class ClaraClientMissing(RuntimeError):
    """The interpreter that holds NVIDIA's client is not installed."""


def clara_python() -> Path:
    """The interpreter of the Clara client's virtualenv.

    `$AORTA_CLARA_PYTHON` when set, else `.clara-venv` at the repository root. Raises
    ClaraClientMissing, saying how to install it, when that file is not an executable:
    tests that need NVIDIA's client fail rather than skip, so compatibility is never
    silently left unchecked.
    """
    override = os.environ.get(CLARA_PYTHON_ENV)
    path = Path(override) if override else REPO_ROOT / ".clara-venv" / "bin" / "python"
    if not (path.is_file() and os.access(path, os.X_OK)):
        source = f"${CLARA_PYTHON_ENV}" if override else "the Clara client virtualenv"
        raise ClaraClientMissing(
            f"{path} ({source}) is not an executable Python interpreter; run `make setup` to "
            f"install NVIDIA's Clara client into .clara-venv, or set {CLARA_PYTHON_ENV}"
        )
    return path


def run_clara_python(
    code: str,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run `code` as a script under the Clara client's interpreter, with `args` in `sys.argv[1:]`.

    The child runs in isolated mode (`python -I`): neither our `PYTHON*` variables, the user
    site nor the working folder can put our own packages on its path. `env`, when given, is laid
    over a copy of our environment. stdout and stderr are captured as text; a non-zero exit is
    returned, not raised, so callers can assert on failures too (show `stderr` when they do).
    Raises ClaraClientMissing when the interpreter is missing, and `subprocess.TimeoutExpired`
    (after killing the child) when it runs longer than `timeout` seconds.
    """
    child_env = dict(os.environ)
    if env is not None:
        child_env.update(env)
    return subprocess.run(
        [str(clara_python()), "-I", "-c", code, *args],
        env=child_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
