"""Clara.Stop: ask every service that runs things for pipelines to stop them.

The monitor answers the verb because it is the one service certain to run on every platform;
the work belongs to the services that own it. Each is asked over the bus, at the same time:

- `aorta.rpc.scheduler.platform_stop`: the scheduler ends every queued and running job as
  STOPPED/TERMINATED ("terminated by a server stop", clara-reference §3.4), stops their operator
  processes and releases their resources.
- `aorta.rpc.models.platform_stop`: the models service stops its pooled Triton servers.

Both receive `{"reason": "Clara.Stop"}` and answer `{"stopped": {<what>: <count>, ...}}`. A
service with no responder is not deployed, so it has nothing to stop. The platform keeps
accepting new work afterwards: Stop ends what runs, not the platform.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from aorta import subjects
from aorta.api import clara_pb2, common_pb2
from aorta.bus import Bus, Request
from aorta.errors import AortaError, Internal, Invalid, Unavailable
from aorta.logger import get_logger
from aorta_services.monitor.messages import parse_request

log = get_logger(__name__)

STOP_REQUEST = json.dumps({"reason": "Clara.Stop"}).encode()

TARGETS: tuple[tuple[str, str], ...] = (
    ("scheduler", subjects.SCHEDULER_PLATFORM_STOP),
    ("models", subjects.MODELS_PLATFORM_STOP),
)

DEADLINE_SHARE = 0.8
"""Of the bus timeout, what the services get to answer, so that our own answer (success or the
failure of one of them) still reaches the gateway before the gateway's request times out."""


@dataclass(frozen=True)
class StopOutcome:
    """What one service said: not deployed, what it stopped, or how it failed."""

    service: str
    deployed: bool = True
    stopped: Mapping[str, int] = field(default_factory=dict)
    error: AortaError | None = None

    def describe(self) -> str:
        if not self.deployed:
            return f"{self.service}: not deployed, nothing to stop"
        if self.error is not None:
            return f"{self.service}: {'; '.join(self.error.messages)}"
        counts = ", ".join(f"{what}={count}" for what, count in sorted(self.stopped.items()))
        return f"{self.service}: stopped {counts or 'nothing'}"


class PlatformStop:
    """The `aorta.rpc.clara.stop` handler. `timeout` is the bus request timeout."""

    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout * DEADLINE_SHARE

    async def handle(self, request: Request) -> bytes:
        """Answers a ClaraStopResponse naming what each service stopped. When a deployed
        service fails or does not answer in time, raises that error (its kind and code) with
        every service's outcome as messages, after the others have finished."""
        parse_request(clara_pb2.ClaraStopRequest, request)
        outcomes = await asyncio.gather(*(self._ask(name, subject) for name, subject in TARGETS))
        lines = [outcome.describe() for outcome in outcomes]
        failures = [outcome.error for outcome in outcomes if outcome.error is not None]
        if failures:
            log.warning("clara.stop_failed", outcomes=lines)
            raise type(failures[0])(*lines, code=failures[0].code)
        log.info("clara.stopped", outcomes=lines)
        response = clara_pb2.ClaraStopResponse(header=common_pb2.ResponseHeader(messages=lines))
        return response.SerializeToString()

    async def _ask(self, service: str, subject: str) -> StopOutcome:
        try:
            answer = await self._bus.request(subject, STOP_REQUEST, timeout=self._timeout)
        except Unavailable as exc:
            if _no_responders(exc, subject):
                return StopOutcome(service, deployed=False)
            return StopOutcome(service, error=exc)
        except AortaError as exc:
            return StopOutcome(service, error=exc)
        try:
            return StopOutcome(service, stopped=parse_stopped(answer))
        except Invalid as exc:
            malformed = Internal(f"answered Clara.Stop with a malformed document: {exc}")
            return StopOutcome(service, error=malformed)


def parse_stopped(answer: bytes) -> dict[str, int]:
    """The counts of a `{"stopped": {...}}` answer; `Invalid` saying what is wrong."""
    try:
        document = json.loads(answer)
    except ValueError:
        raise Invalid("the answer is not JSON") from None
    stopped = document.get("stopped") if isinstance(document, dict) else None
    if not isinstance(stopped, dict) or not all(
        isinstance(count, int) and not isinstance(count, bool) and count >= 0
        for count in stopped.values()
    ):
        raise Invalid('expected {"stopped": {"<what>": <count>, ...}}')
    return {str(what): int(count) for what, count in stopped.items()}


def _no_responders(error: Unavailable, subject: str) -> bool:
    # Both bus adapters report "nobody subscribed" with exactly this message, unlike a timeout
    # (a deployed service that failed to answer), which must not pass for success.
    return error.messages == (f"no service answers {subject}",)
