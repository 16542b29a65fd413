"""Clara.Stop: ask every service that runs things for pipelines to stop them.

The monitor answers the verb because it is the one service certain to run on every platform;
the work belongs to the services that own it. Each is asked over the bus, at the same time:

- `aorta.rpc.scheduler.platform_stop`: the scheduler ends every queued and running job as
  STOPPED/TERMINATED ("terminated by a server stop", docs/clara-compatibility.md, "Clara.Stop"),
  stops their operator processes and releases their resources.
- `aorta.rpc.models.platform_stop`: the models service stops its pooled Triton servers.

Both verbs are contracts (`aorta.contracts.SCHEDULER_PLATFORM_STOP`, `MODELS_PLATFORM_STOP`):
they receive `PlatformStop` and answer `PlatformStopped`, a count per kind of thing. A
service with no responder is not deployed, so it has nothing to stop. The platform keeps
accepting new work afterwards: Stop ends what runs, not the platform.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from aorta import contracts
from aorta.api import clara_pb2, common_pb2
from aorta.bus import Bus, Request
from aorta.bus.codec import Malformed, decode
from aorta.bus.unanswered import no_responders
from aorta.bus.verbs import Verb
from aorta.errors import AortaError, Internal, Unavailable
from aorta.logger import get_logger
from aorta_services.monitor.messages import parse_request

log = get_logger(__name__)

STOP_REQUEST = contracts.PlatformStop(reason="Clara.Stop")

StopVerb = Verb[contracts.PlatformStop, contracts.PlatformStopped]

TARGETS: tuple[StopVerb, ...] = (
    contracts.SCHEDULER_PLATFORM_STOP,
    contracts.MODELS_PLATFORM_STOP,
)
"""The stop verb of every service that runs things (each names its service)."""

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
        outcomes = await asyncio.gather(*(self._ask(verb) for verb in TARGETS))
        lines = [outcome.describe() for outcome in outcomes]
        failures = [outcome.error for outcome in outcomes if outcome.error is not None]
        if failures:
            log.warning("clara.stop_failed", outcomes=lines)
            raise type(failures[0])(*lines, code=failures[0].code)
        log.info("clara.stopped", outcomes=lines)
        response = clara_pb2.ClaraStopResponse(header=common_pb2.ResponseHeader(messages=lines))
        return response.SerializeToString()

    async def _ask(self, verb: StopVerb) -> StopOutcome:
        service, body = verb.service, verb.encode_request(STOP_REQUEST)
        try:
            answer = await self._bus.request(verb.subject, body, timeout=self._timeout)
        except Unavailable as exc:
            if no_responders(exc, verb.subject):
                return StopOutcome(service, deployed=False)
            return StopOutcome(service, error=exc)
        except AortaError as exc:
            return StopOutcome(service, error=exc)
        try:
            # Decoded here rather than by the verb, to tell the operator what was wrong in
            # Clara.Stop's words (the outcome line already names the service).
            stopped = decode(answer, verb.answer, role="answer")
        except Malformed as problem:
            malformed = Internal(
                f"answered Clara.Stop with a malformed document: {problem}; expected "
                f"aorta.contracts.{verb.answer.__name__}"
            )
            return StopOutcome(service, error=malformed)
        return StopOutcome(service, stopped=stopped.stopped)
