"""The keys each mapping of the definition language accepts, and what an unknown key meant.

Pure: a key, the place it was written and the language's vocabulary in; a verdict out.

An unknown key is judged in this order (docs/pipelines.md, "Unknown keys"):

1. Same shape as a key of this place (ignoring case, `-`, `_` and one trailing `s`):
   `apiVersion`, `api_version` and `inputs` are `api-version` and `input` misspelt. An error.
2. Same shape as a key of another place: `input:` indented under `container:` belongs to the
   operator, `command:` written beside `container:` belongs in it. An error naming where it
   belongs, because ignoring it would run a different pipeline than the one written; only a
   misplaced `description`, which changes nothing, is a warning.
3. Within a Damerau-Levenshtein distance (one edit, a swap of neighbours counting as one) of
   a key of this place: 1 for keys of up to 4 letters, 2 for longer ones. A typo: an error
   naming the key it may mean. The distance, not a similarity ratio, because it is what people
   mean by "one or two typos" and short keys (`tag`, `cpu`) stay strict: `gpu` for `cpu` is a
   typo, `os` for `tag` is not.
4. One edit away from a key of the enclosing place or of a place written in this one: misspelt
   and misplaced at once (`comand:` beside `container:`). An error naming the key and where
   it belongs.
5. Anything else is an extension of the kind Clara definitions in the wild carry: a warning,
   and the key is ignored.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from aorta.pipeline_spec.diagnostics import Severity
from aorta.pipeline_spec.yaml_nodes import shown

SHORT_KEY = 4
"""Known keys of at most this many letters (in shape) admit one edit; longer ones two."""
INFORMATIVE = ("description",)
"""Keys that change nothing a pipeline does: written in the wrong place, they are warnings."""
_HINT_CUTOFF = 0.6
_MAX_COMPARED = 64


def key_shape(key: str) -> str:
    """`key` as compared: lower case, without `-` and `_`, without one trailing `s`."""
    shape = key.lower().replace("-", "").replace("_", "")
    return shape[:-1] if shape.endswith("s") else shape


@dataclass(frozen=True)
class Place:
    """A kind of mapping in a definition: the keys it accepts and how messages name it.

    `within` names the places a mapping of this kind is written in, so a misplaced key is
    first looked for one level up (indented too far), then one level down (not far enough).
    """

    name: str
    label: str
    keys: tuple[str, ...]
    within: tuple[str, ...] = ()
    shapes: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shapes", tuple(key_shape(key) for key in self.keys))


PIPELINE = Place(
    "pipeline",
    "the pipeline",
    ("api-version", "name", "description", "orchestrator", "pull-secrets", "parameters",
     "operators", "timeout"),
)  # fmt: skip
OPERATOR = Place(
    "operator",
    "the operator",
    ("name", "description", "api-version", "container", "input", "output", "requests", "models",
     "services", "variables", "parameters", "timeout"),
    ("pipeline",),
)  # fmt: skip
CONTAINER = Place(
    "container",
    "`container`",
    ("image", "tag", "command", "hostVolumePath"),
    ("operator", "service"),
)
REQUESTS = Place("requests", "`requests`", ("cpu", "gpu", "memory"), ("operator", "service"))
INPUT = Place(
    "input", "an input", ("from", "name", "path", "type", "element-type", "shape"), ("operator",)
)
OUTPUT = Place(
    "output", "an output", ("name", "path", "type", "element-type", "shape"), ("operator",)
)
MODEL = Place("model", "a `models` item", ("name",), ("operator",))
SERVICE = Place(
    "service",
    "a service",
    ("name", "api-version", "description", "container", "requests", "variables", "connections"),
    ("operator",),
)
CONNECTIONS = Place("connections", "`connections`", ("http", "volume"), ("service",))
HTTP_CONNECTION = Place("http", "an `http` connection", ("name", "port"), ("connections",))
VOLUME_CONNECTION = Place("volume", "a `volume` connection", ("name", "path"), ("connections",))
IMPORT = Place("import", "`import`", ("path", "args"))

PLACES = (
    PIPELINE, OPERATOR, CONTAINER, REQUESTS, INPUT, OUTPUT, MODEL, SERVICE, CONNECTIONS,
    HTTP_CONNECTION, VOLUME_CONNECTION, IMPORT,
)  # fmt: skip
"""Every mapping the language defines; `variables`, `parameters` and `args` are free-form."""
_BY_NAME = {place.name: place for place in PLACES}
_BENEATH = {
    place.name: tuple(other for other in PLACES if place.name in other.within) for place in PLACES
}
_BY_SHAPE: dict[str, tuple[Place, ...]] = {
    shape: tuple(place for place in PLACES if shape in place.shapes)
    for shape in {shape for place in PLACES for shape in place.shapes}
}


@dataclass(frozen=True)
class Verdict:
    """What an unknown key is taken for: its severity, the message, and the keys of its own
    place it may mean (empty unless it is a typo of one)."""

    severity: Severity
    message: str
    meant: tuple[str, ...] = ()


def edit_distance(left: str, right: str, limit: int) -> int:
    """The Damerau-Levenshtein distance (optimal string alignment: insertions, deletions,
    substitutions and swaps of neighbours count one each), or `limit + 1` when it is larger.

    Strings whose lengths differ by more than `limit` are not compared, so a key of any length
    costs little.
    """
    if abs(len(left) - len(right)) > limit:
        return limit + 1
    # Each letter one side has and the other lacks costs at least one edit.
    if len(set(left) - set(right)) > limit or len(set(right) - set(left)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(right) + 1))
    for i, a in enumerate(left, 1):
        current = [i] + [0] * len(right)
        for j, b in enumerate(right, 1):
            cost = 0 if a == b else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a == right[j - 2] and left[i - 2] == b:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return min(previous[-1], limit + 1)


def allowed_edits(known: str) -> int:
    """How many edits away from `known` a key still counts as a typo of it."""
    return _allowed(key_shape(known))


def _allowed(shape: str) -> int:
    return 1 if len(shape) <= SHORT_KEY else 2


def near_misses(key: str, known: tuple[str, ...]) -> tuple[str, ...]:
    """The keys of `known` that `key` is most likely a misspelling of (ties all kept), or ()."""
    return _near_misses(key_shape(key), known, tuple(key_shape(k) for k in known))


def _near_misses(shape: str, known: tuple[str, ...], shapes: tuple[str, ...]) -> tuple[str, ...]:
    same = tuple(k for k, s in zip(known, shapes, strict=True) if s == shape)
    if same:
        return same
    close: dict[str, int] = {}
    for k, s in zip(known, shapes, strict=True):
        limit = _allowed(s)
        distance = edit_distance(shape, s, limit)
        if distance <= limit:
            close[k] = distance
    if not close:
        return ()
    best = min(close.values())
    return tuple(k for k, d in close.items() if d == best)


def judge(
    key: str, place: Place, owner: str, inside: Place | None = None, *, hint: bool = True
) -> Verdict:
    """What unknown `key`, written in `owner` (a mapping of kind `place`), is taken for.

    `inside` is the place that mapping is written in, where it differs by use (a `container`
    in an operator or in a service); it decides where a misplaced key is said to belong.
    Without `hint`, a warning does not look for the closest key (the costly part), for
    documents with more unknown keys than anyone will read.
    """
    written = quoted(key)
    shape = key_shape(key)
    same = tuple(k for k, s in zip(place.keys, place.shapes, strict=True) if s == shape)
    if same:
        return Verdict("error", f"unknown key {written} in {owner}; {_did_you_mean(same)}", same)
    elsewhere = _belongs_to(shape, place, inside)
    if elsewhere:
        there = " or ".join(other.label for other in elsewhere)
        first = elsewhere[0]
        proper = first.keys[first.shapes.index(shape)]
        spelt = f" (spelt `{proper}`)" if proper != key else ""
        found = "" if owner == place.label else f" (in {owner})"
        message = f"{written} belongs to {there}{spelt}, not {place.label}{found}"
        if proper in INFORMATIVE:
            return Verdict("warning", f"{message}; it is ignored here")
        return Verdict("error", message)
    close = _near_misses(shape, place.keys, place.shapes)
    if close:
        return Verdict("error", f"unknown key {written} in {owner}; {_did_you_mean(close)}", close)
    nearby = _typo_nearby(shape, place, inside)
    if nearby is not None:
        meant, home = nearby
        return Verdict(
            "error",
            f"unknown key {written} in {owner}; did you mean `{meant}`? It belongs to "
            f"{home.label}, not {place.label}",
        )
    ignored = f"unknown key {written} in {owner} is ignored"
    return Verdict("warning", f"{ignored}; {_hint(key, place)}" if hint else ignored)


def quoted(key: str) -> str:
    """`key` in backticks for a message, or quoted and shortened when it would not read well."""
    if len(key) <= _MAX_COMPARED and key.isprintable() and "`" not in key and key.strip():
        return f"`{key}`"
    return shown(key)


def _did_you_mean(keys: tuple[str, ...]) -> str:
    return "did you mean " + " or ".join(f"`{k}`" for k in keys) + "?"


def _belongs_to(shape: str, place: Place, inside: Place | None) -> tuple[Place, ...]:
    """The places other than `place` with a key of this shape: the enclosing one if it has
    it, else those written directly in `place`, else any."""
    having = [other for other in _BY_SHAPE.get(shape, ()) if other is not place]
    if not having:
        return ()
    enclosing = inside or (_BY_NAME[place.within[0]] if place.within else None)
    if enclosing in having:
        return (enclosing,)
    beneath = tuple(other for other in having if other in _BENEATH[place.name])
    return beneath or tuple(having)


def _typo_nearby(shape: str, place: Place, inside: Place | None) -> tuple[str, Place] | None:
    """A key one edit away in the enclosing place or a place written in this one: misspelt and
    misplaced at once (`comand:` beside `container:`). One edit only, and only next door, so
    an extension such as `comment` in an input is not taken for `command`."""
    enclosing = inside or (_BY_NAME[place.within[0]] if place.within else None)
    for other in ((enclosing,) if enclosing else ()) + _BENEATH[place.name]:
        for key, known in zip(other.keys, other.shapes, strict=True):
            if edit_distance(shape, known, 1) <= 1:
                return key, other
    return None


def _hint(key: str, place: Place) -> str:
    if len(key) <= _MAX_COMPARED:
        close = difflib.get_close_matches(key_shape(key), place.shapes, n=1, cutoff=_HINT_CUTOFF)
        if close:
            return f"did you mean `{place.keys[place.shapes.index(close[0])]}`?"
    return f"the keys of {place.label} are " + ", ".join(place.keys)
