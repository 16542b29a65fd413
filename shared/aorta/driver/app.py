"""The operator runner: `python -m aorta.driver.app SCRIPT [ARGS...]`.

It is the container entry point Clara operators use (`python -u -m
nvidia_clara_pipeline_driver.app /app/main.py`): it runs SCRIPT as `__main__`, as `python
SCRIPT ARGS...` would (same `sys.argv`, the script's folder first on `sys.path`), with the global
`clara_payload` built from the operator environment.

Exit status: the script's own (`sys.exit`), else 0; 1 when the script raised or when a driver it
started failed and the script never received that failure from `wait_for_completion()`; 2 for a
usage error or a malformed operator environment, before the script runs.
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

from aorta.driver.driver import DriverError, tracking_starts, undelivered_failure
from aorta.driver.payload import Payload
from aorta.errors import Invalid
from aorta.operator_env import OperatorEnvironment

USAGE_ERROR = 2
SCRIPT_FAILED = 1


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    prog: str = "python -m aorta.driver.app",
) -> int:
    """Runs the script named in `argv` (default `sys.argv[1:]`) and returns the exit status.

    Messages for the operator's log go to stderr, prefixed with `prog`. The script runs in this
    process, so `sys.argv` and `sys.path[0]` stay changed afterwards, as for any `__main__`.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(f"usage: {prog} SCRIPT [ARGS...]", file=sys.stderr)
        return USAGE_ERROR
    script = Path(args[0])
    if not script.is_file():
        print(f"{prog}: no such script: {script}", file=sys.stderr)
        return USAGE_ERROR
    try:
        environment = OperatorEnvironment.from_env(os.environ if environ is None else environ)
    except Invalid as exc:
        print(f"{prog}: malformed operator environment: {exc}", file=sys.stderr)
        return USAGE_ERROR

    sys.argv = [str(script), *args[1:]]
    sys.path[0] = str(script.resolve().parent)
    payload = Payload.from_environment(environment)
    with tracking_starts() as started:
        try:
            runpy.run_path(str(script), {"clara_payload": payload}, run_name="__main__")
        except Exception as exc:
            # The driver already logged a failed callback with its traceback; say it once.
            if not (isinstance(exc, DriverError) and exc.phase):
                traceback.print_exc()
            print(f"{prog}: {script} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return SCRIPT_FAILED
    for driver in started:
        failure = undelivered_failure(driver)
        if failure is not None:
            print(f"{prog}: {script} failed: {failure}", file=sys.stderr)
            return SCRIPT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
