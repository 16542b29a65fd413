"""The operator graph: order, cycles, and the shapes Pipelines.Details and Jobs.Status return.

Pure functions over operator names. An edge `a -> b` means b reads an output of a, so b runs
after a. Everything here is iterative, because a pipeline may hold up to 1000 operators in a
chain and Python's recursion limit is about that.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DagNode:
    """`PipelineDagNode`: an operator and the operators that run after it.

    A fan-in operator appears under each of its parents; the node objects are shared, so the
    structure stays linear in size even when the tree it describes is not.
    """

    name: str
    next: tuple[DagNode, ...] = ()


@dataclass(frozen=True)
class JobDagNode:
    """`JobDagNode` of Jobs.Status: what one operator waits for.

    `input_dependencies` are the operators whose outputs it reads. `order_dependencies` are
    the operators that must finish before it starts; CPDL links operators only through their
    inputs, so the two are the same operators.
    """

    name: str
    input_dependencies: tuple[str, ...] = ()
    order_dependencies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Graph:
    """Operator names in document order with their direct upstream and downstream operators."""

    names: tuple[str, ...]
    upstream: Mapping[str, tuple[str, ...]]
    downstream: Mapping[str, tuple[str, ...]]

    @staticmethod
    def build(names: Sequence[str], upstream: Mapping[str, Iterable[str]]) -> Graph:
        """A graph over `names`; upstream names not among `names` are ignored."""
        position = {name: index for index, name in enumerate(names)}
        ups: dict[str, tuple[str, ...]] = {}
        downs: dict[str, list[str]] = {name: [] for name in names}
        for name in names:
            linked = sorted(
                {u for u in upstream.get(name, ()) if u in position}, key=position.__getitem__
            )
            ups[name] = tuple(linked)
            for parent in linked:
                downs[parent].append(name)
        return Graph(tuple(names), ups, {name: tuple(items) for name, items in downs.items()})

    def topological_order(self) -> tuple[str, ...]:
        """Every operator after all it reads from; among the ready ones, document order first.

        Operators on a cycle (which a loaded pipeline never has) are left out.
        """
        position = {name: index for index, name in enumerate(self.names)}
        waiting = {name: len(self.upstream[name]) for name in self.names}
        ready = [position[name] for name in self.names if waiting[name] == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            name = self.names[heapq.heappop(ready)]
            order.append(name)
            for child in self.downstream[name]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, position[child])
        return tuple(order)

    def roots(self) -> tuple[str, ...]:
        """Operators that read from no other operator, in document order."""
        return tuple(name for name in self.names if not self.upstream[name])

    def cycles(self) -> list[list[str]]:
        """One cycle per group of operators that depend on each other, as `[a, b, ..., a]`.

        Each cycle starts at its member written first and follows the data (`a -> b`: b reads
        a), taking the shortest way back.
        """
        position = {name: index for index, name in enumerate(self.names)}
        found = []
        for group in self._strongly_connected():
            if len(group) < 2:
                continue
            start = min(group, key=position.__getitem__)
            found.append(self._shortest_cycle(start, set(group)))
        found.sort(key=lambda cycle: position[cycle[0]])
        return found

    def dag_nodes(self) -> tuple[DagNode, ...]:
        """The `Pipelines.Details` DAG: root nodes, each with its downstream nodes beneath."""
        built: dict[str, DagNode] = {}
        for name in reversed(self.topological_order()):
            built[name] = DagNode(name, tuple(built[child] for child in self.downstream[name]))
        return tuple(built[name] for name in self.roots())

    def expanded_size(self) -> int:
        """How many nodes `dag_nodes()` describes once every shared node is written out."""
        sizes: dict[str, int] = {}
        for name in reversed(self.topological_order()):
            sizes[name] = 1 + sum(sizes[child] for child in self.downstream[name])
        return sum(sizes[name] for name in self.roots())

    def job_dag(self) -> tuple[JobDagNode, ...]:
        """The `Jobs.Status` DAG: each operator, in document order, with what it waits for."""
        return tuple(
            JobDagNode(name, self.upstream[name], self.upstream[name]) for name in self.names
        )

    def _shortest_cycle(self, start: str, group: set[str]) -> list[str]:
        came_from: dict[str, str] = {}
        queue = deque([start])
        while queue:
            name = queue.popleft()
            for child in self.downstream[name]:
                if child == start:
                    path = [name]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if child in group and child not in came_from:
                    came_from[child] = name
                    queue.append(child)
        return [start, start]

    def _strongly_connected(self) -> list[list[str]]:
        # Tarjan's algorithm with an explicit stack.
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        groups: list[list[str]] = []
        for root in self.names:
            if root in index:
                continue
            work: list[tuple[str, int]] = [(root, 0)]
            while work:
                name, step = work[-1]
                if step == 0:
                    index[name] = low[name] = len(index)
                    stack.append(name)
                    on_stack.add(name)
                children = self.downstream[name]
                if step < len(children):
                    work[-1] = (name, step + 1)
                    child = children[step]
                    if child not in index:
                        work.append((child, 0))
                    elif child in on_stack:
                        low[name] = min(low[name], index[child])
                    continue
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[name])
                if low[name] == index[name]:
                    group: list[str] = []
                    while not group or group[-1] != name:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                    groups.append(group)
        return groups
