"""Click parameter types for the values Clara commands take: ids, `k=v` pairs, moments, enums.

A value that does not parse is a usage error (exit code 2) naming the option, raised before any
call reaches the platform.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from aorta import ids
from aorta.errors import Invalid
from aorta.timestamps import utcnow


class IdType(click.ParamType[str]):
    """A 32-hex id (dashed UUIDs accepted), returned in canonical form."""

    def __init__(self, kind: str, canonical: Callable[[str], str]) -> None:
        self.name = f"{kind}_id"
        self._canonical = canonical

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return self._canonical(str(value))
        except Invalid as exc:
            self.fail(exc.messages[0], param, ctx)


JOB_ID = IdType("job", ids.job_id)
PIPELINE_ID = IdType("pipeline", ids.pipeline_id)
PAYLOAD_ID = IdType("payload", ids.payload_id)


class KeyValueType(click.ParamType[tuple[str, str]]):
    """`key=value` (the value may contain `=`), returned as a pair."""

    name = "key=value"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, equals, rest = str(value).partition("=")
        if not equals or not key.strip():
            self.fail(f"{value!r} is not of the form key=value", param, ctx)
        return key.strip(), rest


KEY_VALUE = KeyValueType()

_RELATIVE = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)(?P<unit>[smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_moment(text: str, now: datetime) -> datetime:
    """A moment from `2024-05-01`, `2024-05-01T10:30`, `...Z`/`+02:00`, or `90m`/`2h`/`3d` ago.

    A time without a zone is local time, as a person typing it means. Raises ValueError.
    """
    cleaned = text.strip()
    relative = _RELATIVE.match(cleaned)
    if relative:
        seconds = float(relative.group("amount")) * _UNIT_SECONDS[relative.group("unit")]
        return now - timedelta(seconds=seconds)
    parsed = datetime.fromisoformat(cleaned.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()
    return parsed.astimezone(UTC)


class MomentType(click.ParamType[datetime]):
    """A point in time for job filters; see `parse_moment`."""

    name = "time"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_moment(str(value), utcnow())
        except ValueError:
            self.fail(
                f"{value!r} is not a time: use 2024-05-01, 2024-05-01T10:30[Z] or an age "
                "such as 90m, 2h, 3d",
                param,
                ctx,
            )


MOMENT = MomentType()

PRIORITIES = ("lower", "normal", "higher", "immediate")
_PRIORITY_ALIASES = {"low": "lower", "high": "higher"}


class PriorityType(click.Choice[str]):
    """Job priority: lower|normal|higher|immediate (Clara's `low`/`high` accepted)."""

    def __init__(self) -> None:
        super().__init__(PRIORITIES, case_sensitive=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).lower()
        return str(super().convert(_PRIORITY_ALIASES.get(text, text), param, ctx))


PRIORITY = PriorityType()
