"""The environment contract between the platform and an operator process.

The platform's executors build an operator's environment with `OperatorEnvironment.to_env`; the
pipeline driver inside the operator reads it back with `OperatorEnvironment.from_env`. Both sides
import this module, so the variable names, the `name:path;name:path` format and the entry naming
rules exist exactly once (docs/clara-compatibility.md, "The operator environment").

Entry names:

- `payload`: the pipeline's own input (an input without `from`).
- `upstream-operator/output-name`: an input bound to a named output of an upstream operator.
- `upstream-operator`: an input bound to the unnamed output of an upstream operator.
- `this-operator/output-name`: a named output; `this-operator`: the operator's unnamed output
  (Clara allows one per operator).

Clara gave the unnamed output an empty entry name; Aorta names it after its operator instead, so
every entry of a set has a distinct, non-empty name that says where the data came from.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from aorta import ids
from aorta.errors import Invalid
from aorta.ids import JobId, PayloadId
from aorta.settings import EnvReader

JOB_ID = "NVIDIA_CLARA_JOBID"
JOB_NAME = "NVIDIA_CLARA_JOBNAME"
STAGE_NAME = "NVIDIA_CLARA_STAGENAME"
STAGE_TIMEOUT = "NVIDIA_CLARA_STAGETIMEOUT"
PAYLOAD_ID = "NVIDIA_CLARA_PAYLOADID"
NOSYNCLOCK = "NVIDIA_CLARA_NOSYNCLOCK"
INPUT_PATHS = "NVIDIA_CLARA_INPUTPATHS"
OUTPUT_PATHS = "NVIDIA_CLARA_OUTPUTPATHS"
TRITON_GRPC_URI = "NVIDIA_TRITON_GRPCURI"
TRITON_HTTP_URI = "NVIDIA_TRITON_HTTPURI"
# Legacy names for the Triton HTTP address, still read by older Clara operator images.
LEGACY_TRITON_URI = "CLARA_TRITON_URI"
LEGACY_TRTIS_URI = "NVIDIA_CLARA_TRTISURI"

# Local development only: which model a stand-alone operator asks its local Triton for. The
# platform never sets these; a pipeline that needs them passes them as operator `variables`.
TRITON_MODEL_NAME = "TRITON_MODEL_NAME"
TRITON_MODEL_VERSION = "TRITON_MODEL_VERSION"
TRITON_MODEL_INPUT = "TRITON_MODEL_INPUT"
TRITON_MODEL_OUTPUT = "TRITON_MODEL_OUTPUT"

RESERVED_NAMES: frozenset[str] = frozenset(
    {
        JOB_ID,
        JOB_NAME,
        STAGE_NAME,
        STAGE_TIMEOUT,
        PAYLOAD_ID,
        NOSYNCLOCK,
        INPUT_PATHS,
        OUTPUT_PATHS,
        TRITON_GRPC_URI,
        TRITON_HTTP_URI,
        LEGACY_TRITON_URI,
        LEGACY_TRTIS_URI,
    }
)
"""The variables `to_env` may write; operator `variables` cannot override them."""

PAYLOAD_ENTRY = "payload"
"""Entry name of the pipeline's own input."""

DEFAULT_JOB_NAME = "local-job"
DEFAULT_STAGE_NAME = "local-operator"
DEFAULT_STAGE_TIMEOUT = 600.0
"""Seconds; Clara's default pipeline timeout, used when the environment names none."""

_Id = TypeVar("_Id", bound=str)

_CLARA_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")


def validate_name(value: str, *, what: str) -> str:
    """Returns `value` if it follows Clara's name rules, else raises `Invalid` naming `what`.

    Clara names are 1 to 255 characters: Latin letters, digits, `-` and `_`
    (docs/clara-compatibility.md, "Names").
    """
    if not _CLARA_NAME.fullmatch(value):
        raise Invalid(
            f"{what} {value!r} is not a valid name: use 1 to 255 letters, digits, '-' or '_'"
        )
    return value


def input_entry_name(from_operator: str | None, output_name: str | None) -> str:
    """The entry name of an input: `payload`, `upstream-operator` or `upstream-operator/output`.

    `from_operator` is the input's `from` (None for the pipeline's own input) and `output_name`
    its `name` (None for the upstream operator's unnamed output). A `name` without `from` is
    `Invalid`: it would name an output of no operator.
    """
    if from_operator is None:
        if output_name is not None:
            raise Invalid(
                f"input names output {output_name!r} but no operator to take it from ('from')"
            )
        return PAYLOAD_ENTRY
    return _entry_name(from_operator, output_name)


def output_entry_name(operator: str, output_name: str | None) -> str:
    """The entry name of an output: `operator/output-name`, or `operator` when unnamed."""
    return _entry_name(operator, output_name)


def _entry_name(operator: str, output_name: str | None) -> str:
    validate_name(operator, what="operator name")
    if output_name is None:
        return operator
    return f"{operator}/{validate_name(output_name, what='output name')}"


@dataclass(frozen=True)
class PathEntry:
    """One `name:path` item: an entry name (see the module docstring) and a container path."""

    name: str
    path: str


def format_paths(entries: Iterable[PathEntry]) -> str:
    """The value of `NVIDIA_CLARA_INPUTPATHS`/`OUTPUTPATHS`: `name:path` items joined by `;`.

    Raises `Invalid` for an entry `parse_paths` would not read back identically: a malformed
    name, an empty path, a path containing `;`, or a name used twice (compared case-insensitively,
    as Clara names are).
    """
    items = tuple(entries)
    for entry in items:
        _check_entry(entry.name, entry.path, variable="paths", item=f"{entry.name}:{entry.path}")
        if ";" in entry.path:
            raise Invalid(f"path {entry.path!r} of entry {entry.name!r} contains ';'")
    _check_unique(items, variable="paths")
    return ";".join(f"{entry.name}:{entry.path}" for entry in items)


def parse_paths(value: str, *, variable: str) -> tuple[PathEntry, ...]:
    """Reads a `name:path;name:path` value; the inverse of `format_paths`.

    Items are split on `;`, and each item at its FIRST `:`. Names never contain `:` (they are
    Clara names joined by `/`), so a path may contain `:` (a Windows drive on a local run);
    a path cannot contain `;`. Empty items (a trailing `;`) are ignored; nothing is stripped.
    A malformed item raises `Invalid` naming `variable` and the item.
    """
    entries: list[PathEntry] = []
    for item in value.split(";"):
        if not item:
            continue
        name, colon, path = item.partition(":")
        if not colon:
            raise Invalid(f"{variable}: item {item!r} is not 'name:path' (no ':')")
        _check_entry(name, path, variable=variable, item=item)
        entries.append(PathEntry(name=name, path=path))
    _check_unique(entries, variable=variable)
    return tuple(entries)


def _check_entry(name: str, path: str, *, variable: str, item: str) -> None:
    segments = name.split("/")
    if len(segments) > 2 or not all(_CLARA_NAME.fullmatch(s) for s in segments):
        raise Invalid(
            f"{variable}: item {item!r} has a malformed name {name!r}: expected 'payload', "
            "'operator' or 'operator/output' made of letters, digits, '-' and '_'"
        )
    if not path:
        raise Invalid(f"{variable}: item {item!r} has an empty path")


def _check_unique(entries: Iterable[PathEntry], *, variable: str) -> None:
    seen: set[str] = set()
    for entry in entries:
        key = entry.name.casefold()
        if key in seen:
            raise Invalid(f"{variable}: entry name {entry.name!r} appears more than once")
        seen.add(key)


@dataclass(frozen=True)
class OperatorEnvironment:
    """Everything the platform tells one operator run, as the operator reads it.

    - `job_id`: 32 lowercase hex characters; `payload_id` the same, or None when not known.
    - `stage_name` is the operator's name; `stage_timeout` seconds, positive (the platform
      gives whole seconds; fractions are kept for callers that compute one).
    - `inputs`/`outputs`: the entries of `NVIDIA_CLARA_INPUTPATHS`/`OUTPUTPATHS`.
    - `triton_grpc_uri`/`triton_http_uri`: `host:port`, set when the operator declared models.
    - `nosynclock`: tells Clara's stock driver not to wait for the platform's lock. Aorta starts
      an operator only once its inputs are complete, so its platform always sets it (the default).
    - `variables`: every other variable (the operator's `variables`, service connections); they
      may not use a name in `RESERVED_NAMES`. Left out of `repr`, as they may hold secrets.
    """

    job_id: JobId
    job_name: str
    stage_name: str
    stage_timeout: float = DEFAULT_STAGE_TIMEOUT
    payload_id: PayloadId | None = None
    inputs: tuple[PathEntry, ...] = ()
    outputs: tuple[PathEntry, ...] = ()
    triton_grpc_uri: str | None = None
    triton_http_uri: str | None = None
    nosynclock: bool = True
    variables: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)

    def __post_init__(self) -> None:
        # Ids are stored canonical, so `to_env` always writes what `from_env` accepts.
        object.__setattr__(self, "job_id", ids.job_id(self.job_id))
        if self.payload_id is not None:
            object.__setattr__(self, "payload_id", ids.payload_id(self.payload_id))
        if not (math.isfinite(self.stage_timeout) and self.stage_timeout > 0):
            raise Invalid(
                f"{STAGE_TIMEOUT}: {self.stage_timeout!r} is not a positive number of seconds"
            )
        clashes = sorted(RESERVED_NAMES.intersection(self.variables))
        if clashes:
            raise Invalid(f"operator variables may not set {', '.join(clashes)}")
        # A read-only copy: the dataclass is frozen, its mapping should be too.
        object.__setattr__(self, "variables", MappingProxyType(dict(self.variables)))

    def to_env(self) -> dict[str, str]:
        """The variables to start the operator process with (its `variables` included).

        Optional values are omitted when unset; `NVIDIA_CLARA_NOSYNCLOCK` is `1` or absent. When
        an HTTP Triton address is given, the legacy `CLARA_TRITON_URI` and
        `NVIDIA_CLARA_TRTISURI` carry it too, for older operator images.
        """
        env = dict(self.variables)
        env[JOB_ID] = self.job_id
        env[JOB_NAME] = self.job_name
        env[STAGE_NAME] = self.stage_name
        timeout = self.stage_timeout
        env[STAGE_TIMEOUT] = str(int(timeout)) if float(timeout).is_integer() else repr(timeout)
        env[INPUT_PATHS] = format_paths(self.inputs)
        env[OUTPUT_PATHS] = format_paths(self.outputs)
        if self.payload_id is not None:
            env[PAYLOAD_ID] = self.payload_id
        if self.nosynclock:
            env[NOSYNCLOCK] = "1"
        if self.triton_grpc_uri:
            env[TRITON_GRPC_URI] = self.triton_grpc_uri
        if self.triton_http_uri:
            env[TRITON_HTTP_URI] = self.triton_http_uri
            env[LEGACY_TRITON_URI] = self.triton_http_uri
            env[LEGACY_TRTIS_URI] = self.triton_http_uri
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OperatorEnvironment:
        """Reads the contract from `environ`, tolerating what a local run leaves unset.

        Missing values: a job id becomes a fresh random one (each local run is its own job),
        job and stage names `local-job`/`local-operator`, the timeout 600 s, the payload id
        None, the path lists empty, `nosynclock` False (as Clara's driver reads an absent
        variable). The Triton HTTP address falls back to `CLARA_TRITON_URI`, then
        `NVIDIA_CLARA_TRTISURI`. A value that is present but malformed raises `Invalid` naming
        the variable; every other variable lands in `variables`.
        """
        env = EnvReader(environ)
        http = env.optional(TRITON_HTTP_URI)
        for legacy in (LEGACY_TRITON_URI, LEGACY_TRTIS_URI):
            http = http or env.optional(legacy)
        return cls(
            job_id=_read_id(environ, JOB_ID, ids.job_id) or JobId(ids.new_id()),
            job_name=env.text(JOB_NAME, DEFAULT_JOB_NAME),
            stage_name=env.text(STAGE_NAME, DEFAULT_STAGE_NAME),
            stage_timeout=env.number(STAGE_TIMEOUT, DEFAULT_STAGE_TIMEOUT),
            payload_id=_read_id(environ, PAYLOAD_ID, ids.payload_id),
            inputs=parse_paths(environ.get(INPUT_PATHS, ""), variable=INPUT_PATHS),
            outputs=parse_paths(environ.get(OUTPUT_PATHS, ""), variable=OUTPUT_PATHS),
            triton_grpc_uri=env.optional(TRITON_GRPC_URI),
            triton_http_uri=http,
            nosynclock=env.boolean(NOSYNCLOCK, False),
            variables={k: v for k, v in environ.items() if k not in RESERVED_NAMES},
        )

    @property
    def job_uuid(self) -> uuid.UUID:
        """The job id as the `uuid.UUID` Clara's driver hands to scripts."""
        return uuid.UUID(hex=self.job_id)


def _read_id(environ: Mapping[str, str], variable: str, parse: Callable[[str], _Id]) -> _Id | None:
    raw = environ.get(variable)
    if not raw:
        return None
    try:
        return parse(raw)
    except Invalid as exc:
        raise Invalid(f"{variable}: {exc}", code=exc.code) from None
