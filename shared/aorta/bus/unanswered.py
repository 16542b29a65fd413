"""The ways a request goes unanswered, worded once for both bus adapters and their callers.

Nobody serving a subject (the service is not deployed, or not started yet) is answered at
once; a served request that gets no answer in time (the replica holding it died or stalled)
is answered when the caller's timeout runs out, and so is a stream that sends nothing for as
long. Callers tell them apart: a service that is not
deployed may be fine to go without, and a read that went unanswered may be asked again. Both
are `Unavailable`, so they cross the bus as such; the predicates match the subject too, so an
error another service passed on about its own call is never taken for one about this call.
"""

from __future__ import annotations

from aorta.errors import Unavailable


def no_responders_error(subject: str) -> Unavailable:
    """The error for a request to `subject` that nobody serves."""
    return Unavailable(f"no service answers {subject}")


def no_answer_error(subject: str, timeout: float) -> Unavailable:
    """The error for a request to `subject` that nobody answered within `timeout` seconds."""
    return Unavailable(f"no answer from {subject} within {timeout:g} s")


def stream_stalled_error(subject: str, timeout: float) -> Unavailable:
    """The error for a stream from `subject` that sent nothing for `timeout` seconds."""
    return Unavailable(f"{subject} sent nothing for {timeout:g} s in a stream")


def no_responders(error: Unavailable, subject: str) -> bool:
    """Whether `error` is the bus saying nobody serves `subject` (not a timeout)."""
    return error.messages == (f"no service answers {subject}",)


def timed_out(error: Unavailable, subject: str) -> bool:
    """Whether `error` is the bus saying nobody answered `subject` in time."""
    return len(error.messages) == 1 and error.messages[0].startswith(f"no answer from {subject} ")


def stalled(error: Unavailable, subject: str) -> bool:
    """Whether `error` is the bus saying the stream from `subject` sent nothing in time."""
    return len(error.messages) == 1 and error.messages[0].startswith(f"{subject} sent nothing ")
