"""How `NatsBus` frames answers and streams on NATS, and the two ends of a streamed answer.

Wire framing, for anyone who must interoperate:

- Unary: a core NATS request; the answer's body is the handler's bytes. An error answer has the
  header `Aorta-Error: 1` and the JSON of `AortaError.to_wire()` as its body.
- Streams: the requester subscribes to a fresh inbox and publishes the request with the inbox as
  its reply subject. The producer sends to the inbox, in order:
  items (`Aorta-Stream: item`, `Aorta-Seq: 1, 2, ...`, reply subject = the producer's control
  inbox; `Aorta-Stream: batch` for a message carrying several items, each its length as a
  varint then its bytes, `aorta.bus.batches`), then one end frame (`Aorta-Stream: end`,
  `Aorta-Seq: <messages sent>`; with `Aorta-Error: 1` and the error JSON as body when the
  handler failed). Sequence numbers and the item window count messages, a batch as one.
  The requester sends to the control inbox `Aorta-Stream: ack` with `Aorta-Seq: n` (messages
  consumed so far) and `Aorta-Bytes: b` (their bodies' bytes) every `stream_window // 2` items
  or once `stream_window_bytes // 2` bytes came since the last ack, whichever is first, and
  `Aorta-Stream: cancel` when it stops early. The producer sends message n only when
  n <= acked + `stream_window` and fewer than `stream_window_bytes` bytes it sent are not
  acknowledged, so at most a window of messages, and a window of bytes plus one message, is
  buffered per stream. When the requester is gone without a word, nats-server
  answers the next item with a no-responders status (503) on the control inbox, which stops the
  producer too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from aorta.bus.batches import Batch, pack, unpack
from aorta.bus.port import (
    ERROR_HEADER,
    Request,
    StreamHandler,
    as_caller_error,
    check_size,
    decode_error,
    encode_error,
    message_context,
    outgoing_headers,
)
from aorta.bus.unanswered import no_answer_error, no_responders_error, stream_stalled_error
from aorta.errors import AortaError, Internal, Invalid, Unavailable
from aorta.logger import get_logger

STREAM_HEADER = "Aorta-Stream"
SEQ_HEADER = "Aorta-Seq"
BYTES_HEADER = "Aorta-Bytes"
NO_RESPONDERS = "503"

_log = get_logger(__name__)


async def consume_stream(
    nc: Client,
    subject: str,
    data: bytes,
    *,
    item_timeout: float,
    headers: Mapping[str, str] | None,
    window: int,
    window_bytes: int,
) -> AsyncGenerator[bytes, None]:
    """The requester's end of `Bus.request_stream` (see the port for the contract)."""
    ack_every, ack_bytes = max(1, window // 2), max(1, window_bytes // 2)
    with translated(subject, item_timeout):
        inbox = await nc.subscribe(nc.new_inbox())
    control, received, finished = "", 0, False
    # Bytes received in all, and at the last ack.
    taken = acked_bytes = 0
    try:
        with translated(subject, item_timeout):
            await nc.publish(subject, data, reply=inbox.subject, headers=copy_headers(headers))
        while True:
            try:
                msg = await inbox.next_msg(timeout=item_timeout)
            except nats.errors.TimeoutError as exc:
                raise stream_stalled_error(subject, item_timeout) from exc
            except nats.errors.Error as exc:
                raise Unavailable(f"the stream from {subject} broke: {exc!r}") from exc
            frame = msg.headers or {}
            if frame.get("Status") == NO_RESPONDERS:
                finished = True
                raise no_responders_error(subject)
            seq = _seq(frame)
            if frame.get(STREAM_HEADER) == "end":
                finished = True
                if frame.get(ERROR_HEADER):
                    raise decode_error(msg.data, subject=subject)
                if seq != received:
                    raise Internal(f"the stream from {subject} lost items")
                return
            if seq != received + 1:
                raise Internal(f"the stream from {subject} lost items before item {seq}")
            control = msg.reply or control
            data, batch = msg.data, frame.get(STREAM_HEADER) == "batch"
            del msg
            taken += len(data)
            if batch:
                for item in _split(data, subject):
                    yield item
            else:
                yield data
            del data
            received += 1
            if (received % ack_every == 0 or taken - acked_bytes >= ack_bytes) and control:
                acked_bytes = taken
                with translated(subject, item_timeout):
                    await nc.publish(control, headers=_ack(received, taken))
    finally:
        if not finished and control:
            await quietly(nc.publish(control, headers=_frame("cancel", received)))
        await quietly(inbox.unsubscribe())


async def produce_stream(
    nc: Client,
    handler: StreamHandler,
    msg: Msg,
    *,
    window: int,
    window_bytes: int,
    credit_timeout: float,
) -> None:
    """The serving end of a stream: runs `handler` for `msg` and sends its items, never more
    than `window` messages, nor more than `window_bytes` plus one message, ahead of the
    consumer. Stops (closing the handler's generator) when the consumer cancels, vanishes or
    makes no room within `credit_timeout`. Cancelled (drain timeout), it tells the consumer
    with an `Unavailable` end frame."""
    request, inbox = request_of(msg), msg.reply
    if not inbox:
        _log.warning("stream request without a reply subject", subject=msg.subject)
        return
    credit = _Credit(window, window_bytes)
    control = await nc.subscribe(nc.new_inbox(), cb=credit.on_control)
    sent = sent_bytes = 0
    with message_context(request):
        items = handler(request)
        try:
            # Room first, then the next item: a handler is not asked for an item (a job read
            # and encoded) before it can be sent, so what a stream holds is its window.
            while await credit.allows(sent + 1, sent_bytes, credit_timeout):
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    await nc.publish(inbox, headers=_frame("end", sent))
                    return
                kind, body = ("batch", pack(item)) if isinstance(item, Batch) else ("item", item)
                del item
                check_size(body, nc.max_payload, what=f"stream item {sent + 1}", error=Internal)
                sent += 1
                sent_bytes += len(body)
                await nc.publish(inbox, body, reply=control.subject, headers=_frame(kind, sent))
                del body
                # nats-py's publish only queues the message for its flusher task: without a
                # turn of the loop here, a handler whose items come without waiting (a page
                # of jobs already read) would keep the first of them from leaving until its
                # credit ran out, and the rest of the process waiting as long.
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            await _end_with(nc, inbox, sent, Unavailable(f"{request.subject} stopped"))
            raise
        except Exception as exc:
            await _end_with(nc, inbox, sent, as_caller_error(exc, subject=request.subject))
        finally:
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()
            await quietly(control.unsubscribe())


async def _end_with(nc: Client, inbox: str, sent: int, error: AortaError) -> None:
    headers = _frame("end", sent) | {ERROR_HEADER: "1"}
    await quietly(nc.publish(inbox, encode_error(error), headers=headers))


class _Credit:
    """A stream producer's view of its consumer: how far it has consumed, whether it left."""

    def __init__(self, window: int, window_bytes: int) -> None:
        self._window, self._window_bytes = window, window_bytes
        self._acked = self._acked_bytes = 0
        self._stopped = False
        self._changed = asyncio.Event()

    async def on_control(self, msg: Msg) -> None:
        frame = msg.headers or {}
        if frame.get(STREAM_HEADER) == "ack":
            self._acked = max(self._acked, _seq(frame))
            self._acked_bytes = max(self._acked_bytes, _number(frame, BYTES_HEADER))
        elif frame.get(STREAM_HEADER) == "cancel" or frame.get("Status") == NO_RESPONDERS:
            self._stopped = True
        self._changed.set()

    async def allows(self, seq: int, sent_bytes: int, patience: float) -> bool:
        """Waits until item `seq` may be sent after `sent_bytes` bytes of items. False when the
        consumer stopped, or made no room within `patience` seconds (an abandoned iterator)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while not self._stopped and (
            seq > self._acked + self._window or sent_bytes - self._acked_bytes >= self._window_bytes
        ):
            self._changed.clear()
            # asyncio.timeout: wait_for may swallow a cancellation on Python 3.11.
            try:
                async with asyncio.timeout_at(deadline):
                    await self._changed.wait()
            except TimeoutError:
                _log.warning("stream consumer made no room; stopping", waited_s=patience)
                return False
        return not self._stopped


@contextmanager
def translated(subject: str, timeout: float) -> Iterator[None]:
    """nats-py's errors as the port's, chained to the original."""
    try:
        yield
    except nats.errors.NoRespondersError as exc:
        raise no_responders_error(subject) from exc
    except nats.errors.TimeoutError as exc:
        raise no_answer_error(subject, timeout) from exc
    except (nats.errors.BadSubjectError, nats.errors.MaxPayloadError) as exc:
        raise Invalid(f"the bus refused a message on {subject}: {exc}") from exc
    except nats.errors.Error as exc:
        raise Unavailable(f"the bus failed on {subject}: {exc!r}") from exc


async def quietly(step: Coroutine[Any, Any, Any]) -> None:
    """Runs a best-effort step (clean-up, acknowledgement): failures are logged, not raised."""
    try:
        await step
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        _log.debug("best-effort bus step failed", error=repr(exc))


def request_of(msg: Msg) -> Request:
    return Request(subject=msg.subject, data=msg.data, headers=dict(msg.headers or {}))


def copy_headers(headers: Mapping[str, str] | None) -> dict[str, str] | None:
    return outgoing_headers(headers) or None


def _frame(kind: str, seq: int) -> dict[str, str]:
    return {STREAM_HEADER: kind, SEQ_HEADER: str(seq)}


def _split(body: bytes, subject: str) -> list[bytes]:
    try:
        return unpack(body)
    except ValueError as exc:
        raise Internal(f"the stream from {subject} sent a malformed batch") from exc


def _ack(received: int, taken: int) -> dict[str, str]:
    return _frame("ack", received) | {BYTES_HEADER: str(taken)}


def _seq(frame: Mapping[str, str]) -> int:
    return _number(frame, SEQ_HEADER)


def _number(frame: Mapping[str, str], header: str) -> int:
    try:
        return int(frame.get(header, "0"))
    except ValueError:
        return -1
