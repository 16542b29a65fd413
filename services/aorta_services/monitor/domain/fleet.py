"""The latest GPU sample of every node, as the monitors publish them: pure, no I/O.

Any monitor may answer a Clara call (they share one queue group), so each keeps what every node
published on `aorta.metrics.gpu` and answers for all of them. A node that stops publishing (its
monitor stopped, the node is gone) drops out after `EXPIRY_PERIODS` of its own interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aorta.gpu.sample import NodeSample

EXPIRY_PERIODS = 3.0
"""How many of a node's sampling periods may pass without news before it is forgotten."""

_SHORTEST_PERIOD = 0.1


@dataclass(frozen=True)
class _Entry:
    sample: NodeSample
    expires: float


class Fleet:
    """Latest `NodeSample` per node id, with expiry on a monotonic clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._nodes: dict[str, _Entry] = {}

    def record(self, sample: NodeSample) -> None:
        """Keeps `sample` unless the node already gave a newer one (messages may cross)."""
        known = self._nodes.get(sample.node_id)
        if known is not None and known.sample.taken_at > sample.taken_at:
            return
        period = max(sample.interval, _SHORTEST_PERIOD)
        self._nodes[sample.node_id] = _Entry(sample, self._clock() + EXPIRY_PERIODS * period)

    def current(self) -> list[NodeSample]:
        """The live nodes' latest samples, ordered by node id; expired nodes are forgotten."""
        now = self._clock()
        for node_id in [n for n, entry in self._nodes.items() if entry.expires <= now]:
            del self._nodes[node_id]
        return [self._nodes[node_id].sample for node_id in sorted(self._nodes)]
