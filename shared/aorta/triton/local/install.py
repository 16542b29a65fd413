"""Where a `tritonserver` and its Python backend are on this machine, and which Python runs
the models.

By default the server is the one shipped in the `nvidia-pytriton` wheel
(docs/test-infrastructure.md, "Triton from the nvidia-pytriton wheel"):
`pytriton/tritonserver/{bin/tritonserver, backends/python/,
python_backend_stubs/<3.x>/triton_python_backend_stub}` and the bundled shared libraries in
`nvidia_pytriton.libs/` beside it in site-packages. `AORTA_TRITON_HOME` may name another tree of
the same shape (a Triton release unpacked under /opt, say), whose stub then must already sit in
`backends/python/` unless `python_backend_stubs/` is there too.

Models run in the Python environment whose `bin/python3` the stub finds first on `PATH`: by
default this process's own virtualenv, or the one `AORTA_TRITON_PYTHON_ENV` names, so models
may have dependencies of their own. That environment decides the stub (its Python version) and
needs numpy 1.x: Triton 2.51's stub reads numpy's C structures in their 1.x layout, and under
numpy 2 every output tensor comes back empty.

The wheel's Python package itself is never imported: only its files are used, so its own
dependencies need not be installed.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aorta.errors import Unavailable

STUB = "triton_python_backend_stub"

_PROBE = (
    "import json, sys, sysconfig\n"
    "try:\n    import numpy\n    found = numpy.__version__\n"
    "except ImportError:\n    found = None\n"
    "print(json.dumps({'version': '%d.%d' % sys.version_info[:2], "
    "'libdir': sysconfig.get_config_var('LIBDIR'), 'numpy': found}))\n"
)


class TritonNotInstalled(Unavailable):
    """No usable tritonserver, or no usable Python for its models, was found."""


@dataclass(frozen=True)
class ModelPython:
    """The Python environment models run in: its `bin`, version, `LIBDIR` and numpy."""

    bin: Path
    version: str
    libdir: str | None
    numpy: str | None

    @classmethod
    @functools.cache
    def probe(cls, environment: Path | None) -> ModelPython:
        """Asks the environment's `python3` (this process's virtualenv when None), once per
        process; `TritonNotInstalled` when it cannot run or lacks numpy 1.x. Blocks for a
        moment."""
        bin = environment / "bin" if environment else Path(sys.executable).parent
        python = bin / "python3"
        try:
            done = subprocess.run(
                [str(python), "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
            )
            found = json.loads(done.stdout)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            raise TritonNotInstalled(
                f"{python} cannot run the models of Triton's Python backend: {exc}"
            ) from None
        model_python = cls(bin, str(found["version"]), found.get("libdir"), found.get("numpy"))
        numpy = model_python.numpy
        if numpy is None or not numpy.startswith("1."):
            raise TritonNotInstalled(
                f"Triton's Python backend needs numpy 1.x in the environment of {python}, found "
                f"{'no numpy' if numpy is None else 'numpy ' + numpy}: install numpy<2 "
                "(numpy==1.26.4) there, or name another environment in AORTA_TRITON_PYTHON_ENV"
            )
        return model_python


@dataclass(frozen=True)
class TritonInstall:
    """A tritonserver tree, and what a child process needs to run it with the model Python.

    `stub` is the Python backend stub for the model Python's version, to be placed in a copy of
    `backends/python/` (None when the tree's backend folder already holds one); `libraries` go
    first on `LD_LIBRARY_PATH`; `interpreter_bin` goes first on `PATH`.
    """

    binary: Path
    backends: Path
    stub: Path | None
    libraries: tuple[Path, ...]
    interpreter_bin: Path

    @classmethod
    def locate(cls, home: Path | None = None, python_env: Path | None = None) -> TritonInstall:
        """The tree at `home`, else the nvidia-pytriton wheel's, with models run by the Python
        of `python_env` (else this process's); `TritonNotInstalled` saying what to install when
        something is missing. Blocks for a moment (it runs the model Python once)."""
        libraries: list[Path] = []
        if home is None:
            spec = importlib.util.find_spec("pytriton")
            if spec is None or spec.origin is None:
                raise TritonNotInstalled(
                    "no tritonserver found: install the nvidia-pytriton wheel "
                    "(`uv pip install --no-deps nvidia-pytriton==0.7.0`) or set "
                    "AORTA_TRITON_HOME to a Triton tree (bin/tritonserver, backends/python/)"
                )
            package = Path(spec.origin).parent
            home = package / "tritonserver"
            bundled = package.parent / "nvidia_pytriton.libs"
            if bundled.is_dir():
                libraries.append(bundled)
        binary = home / "bin" / "tritonserver"
        backends = home / "backends"
        if not binary.is_file() or not (backends / "python").is_dir():
            raise TritonNotInstalled(
                f"{home} is not a Triton tree: it needs bin/tritonserver and backends/python/"
            )
        python = ModelPython.probe(python_env)
        stub: Path | None = home / "python_backend_stubs" / python.version / STUB
        if not (stub and stub.is_file()):
            if not (backends / "python" / STUB).is_file():
                raise TritonNotInstalled(
                    f"{home} has no Python backend stub for Python {python.version}: it needs "
                    f"python_backend_stubs/{python.version}/{STUB} or backends/python/{STUB}"
                )
            stub = None
        if python.libdir:
            libraries.append(Path(python.libdir))
        return cls(binary, backends, stub, tuple(libraries), python.bin)

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base` with `LD_LIBRARY_PATH` and `PATH` extended for a tritonserver child."""
        env = dict(base)
        libraries = [str(path) for path in self.libraries]
        if env.get("LD_LIBRARY_PATH"):
            libraries.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = ":".join(libraries)
        path = env.get("PATH") or "/usr/local/bin:/usr/bin:/bin"
        env["PATH"] = f"{self.interpreter_bin}:{path}"
        return env
