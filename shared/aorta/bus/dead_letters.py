"""Dead letters: events a consumer failed to process, kept with the reason instead of dropped.

When an event handler of `Bus.subscribe_events` keeps failing (`BusOptions.event_max_deliver`
deliveries), the event is not dropped: it is published, as it was received, on the JetStream
stream `AORTA_DEAD_LETTERS` under `aorta.deadletters.<consumer>.<entity>.<id>.<event>`
(`<consumer>` is the durable name, `ephemeral` for a consumer without one), with headers that
say why (`Aorta-Dead-Letter-Reason`: the handler's last exception), which consumer gave up, the
event's own subject and how often it was tried. Only then is the event terminated on its
consumer; when the dead letter cannot be stored, the event is delivered again later, so it is
never lost. The stream keeps dead letters for `DEAD_LETTER_MAX_AGE`, at most
`DEAD_LETTER_MAX_MSGS` of them (a count, not bytes: JetStream would reserve a byte limit on the
disk up front); docs/events.md shows how to read and replay them.

Both bus adapters count here what became of each dead letter (`stored`, `not_stored`), so the
metrics `aorta_dead_letters_total` and `aorta_dead_letter_failures_total` mean the same on both.
"""

from __future__ import annotations

from dataclasses import dataclass

from aorta.bus.events import EVENTS_PREFIX, CloudEvent
from aorta.observability import metrics

DEAD_LETTER_STREAM = "AORTA_DEAD_LETTERS"
DEAD_LETTER_PREFIX = "aorta.deadletters"

REASON_HEADER = "Aorta-Dead-Letter-Reason"
CONSUMER_HEADER = "Aorta-Dead-Letter-Consumer"
SUBJECT_HEADER = "Aorta-Dead-Letter-Subject"
ATTEMPTS_HEADER = "Aorta-Dead-Letter-Attempts"

EPHEMERAL = "ephemeral"
"""The consumer name of a dead letter from a subscription without a durable name."""

MAX_REASON = 1024
"""Characters of the reason kept in the header."""

DEAD_LETTER_MAX_AGE = 30 * 24 * 3600.0
DEAD_LETTER_MAX_MSGS = 100_000


def reason_of(error: BaseException) -> str:
    """The reason a dead letter carries: the exception's type and message, shortened."""
    return f"{type(error).__name__}: {error}"[:MAX_REASON]


@dataclass(frozen=True)
class DeadLetter:
    """One event a consumer gave up on, with why (`reason`) and after how many `attempts`."""

    consumer: str
    event: CloudEvent
    reason: str
    attempts: int

    @property
    def subject(self) -> str:
        """Where it is stored: the event's subject below `aorta.deadletters.<consumer>`."""
        rest = self.event.nats_subject.removeprefix(EVENTS_PREFIX + ".")
        return f"{DEAD_LETTER_PREFIX}.{self.consumer}.{rest}"

    def headers(self) -> dict[str, str]:
        """The headers it is published with (`Nats-Msg-Id` keeps a retried publish once)."""
        return {
            "Nats-Msg-Id": f"{self.consumer}:{self.event.id}",
            REASON_HEADER: self.reason,
            CONSUMER_HEADER: self.consumer,
            SUBJECT_HEADER: self.event.nats_subject,
            ATTEMPTS_HEADER: str(self.attempts),
        }


def stored(letter: DeadLetter) -> None:
    """Counts `letter` as kept, once it is stored (`aorta_dead_letters_total`)."""
    if metrics.recording():
        metrics.DEAD_LETTERS.labels(letter.consumer, letter.event.entity).inc()


def not_stored(letter: DeadLetter) -> None:
    """Counts a failed attempt to store `letter` (`aorta_dead_letter_failures_total`); its
    event is delivered again, and each later failure counts again."""
    if metrics.recording():
        metrics.DEAD_LETTER_FAILURES.labels(letter.consumer).inc()
