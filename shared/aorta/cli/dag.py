"""Pipeline and job DAGs as trees people can read.

`Pipelines.Details` sends roots with their `next` operators; `Jobs.Status` sends
`JobDagNode`s whose `input_dependencies`/`order_dependencies` name upstream operators, either
flat (one entry per operator) or nested. Both are read into the same edge set, so the CLI does
not depend on which shape a server chooses, and drawn from the sources downstream. An operator
with several upstreams appears under each; its own subtree is drawn the first time only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rich.text import Text
from rich.tree import Tree

from aorta.api import jobs_pb2, pipelines_pb2


@dataclass
class Dag:
    """Operators in the order first seen, and the edges upstream -> downstream."""

    nodes: list[str] = field(default_factory=list)
    children: dict[str, list[str]] = field(default_factory=dict)
    parents: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str) -> None:
        if name not in self.children:
            self.nodes.append(name)
            self.children[name] = []
            self.parents[name] = []

    def link(self, upstream: str, downstream: str) -> None:
        self.add(upstream)
        self.add(downstream)
        if downstream not in self.children[upstream]:
            self.children[upstream].append(downstream)
            self.parents[downstream].append(upstream)

    @property
    def roots(self) -> list[str]:
        """Operators with no upstream; every operator if the edges form only cycles."""
        found = [name for name in self.nodes if not self.parents[name]]
        return found or list(self.nodes)

    def edges(self) -> list[tuple[str, str]]:
        return [(up, down) for up in self.nodes for down in self.children[up]]


def from_pipeline(nodes: Iterable[pipelines_pb2.PipelinesDetailsResponse.PipelineDagNode]) -> Dag:
    """The DAG of `Pipelines.Details` (`next` points downstream)."""
    dag = Dag()

    def visit(node: pipelines_pb2.PipelinesDetailsResponse.PipelineDagNode) -> None:
        dag.add(node.name)
        for following in node.next:
            dag.link(node.name, following.name)
            visit(following)

    for node in nodes:
        visit(node)
    return dag


def from_job(
    nodes: Iterable[jobs_pb2.JobsStatusResponse.JobDagNode], operators: Iterable[str] = ()
) -> Dag:
    """The DAG of `Jobs.Status` (dependencies point upstream); `operators` from
    `operator_details` are added as lone nodes when the server sent no DAG for them."""
    dag = Dag()

    def visit(node: jobs_pb2.JobsStatusResponse.JobDagNode) -> None:
        dag.add(node.name)
        for upstream in (*node.input_dependencies, *node.order_dependencies):
            dag.link(upstream.name, node.name)
            visit(upstream)

    for node in nodes:
        visit(node)
    for name in operators:
        dag.add(name)
    return dag


def tree(dag: Dag, title: Text, label: Callable[[str], Text]) -> Tree:
    """A rich Tree of `dag` under `title`, each operator drawn by `label`."""
    root = Tree(title, guide_style="dim")
    drawn: set[str] = set()

    def draw(parent: Tree, name: str, path: tuple[str, ...]) -> None:
        repeated = name in drawn or name in path
        text = label(name)
        if repeated and dag.children[name]:
            text = text + Text(" (see above)", style="dim")
        branch = parent.add(text)
        if repeated:
            return
        drawn.add(name)
        for child in dag.children[name]:
            draw(branch, child, (*path, name))

    for name in dag.roots:
        draw(root, name, ())
    return root
