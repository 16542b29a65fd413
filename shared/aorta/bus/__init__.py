"""The message bus: the port services program against, and CloudEvents for domain events.

Import an adapter from its module: `aorta.bus.nats.NatsBus` (needs nats-py and a server) or
`aorta.bus.memory.MemoryBus` (in-process, for tests). `aorta.bus.nats_server` runs a nats-server.
"""

from aorta.bus.batches import Batch
from aorta.bus.events import CloudEvent, check_event_filter, make_event
from aorta.bus.port import (
    ERROR_HEADER,
    REQUEST_ID_HEADER,
    Bus,
    BusOptions,
    DeliverPolicy,
    EventHandler,
    MessageHandler,
    Request,
    StreamHandler,
    StreamItem,
    Subscription,
    UnaryHandler,
)

__all__ = [
    "ERROR_HEADER",
    "REQUEST_ID_HEADER",
    "Batch",
    "Bus",
    "BusOptions",
    "CloudEvent",
    "DeliverPolicy",
    "EventHandler",
    "MessageHandler",
    "Request",
    "StreamHandler",
    "StreamItem",
    "Subscription",
    "UnaryHandler",
    "check_event_filter",
    "make_event",
]
