"""What the agent beside an operator pod moves, written by the executor and read by the agent.

The Kubernetes executor puts one `AgentPlan` into the `AORTA_AGENT_PLAN` variable of the pod's
init container (`aorta agent fetch`) and push sidecar (`aorta agent push`). Inside those
containers each declared input and output path is mounted under `work` the way
`aorta.executors.workspace.Workspace` lays volumes out (`/input` at `<work>/volumes/input`), so
the agent moves bytes with the very functions the local executor uses. The operator container
mounts the same volumes at the declared paths themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aorta.errors import Invalid
from aorta.executors.port import VolumeBinding

PLAN_VARIABLE = "AORTA_AGENT_PLAN"
POD_VARIABLE = "AORTA_AGENT_POD"
NAMESPACE_VARIABLE = "AORTA_AGENT_NAMESPACE"
WORK_FOLDER = "/aorta/work"
"""Where the agent containers mount the run's volumes (a `Workspace` folder)."""


class PlanError(Invalid):
    """The agent's environment is missing or malformed (not a failure to move bytes)."""


@dataclass(frozen=True)
class AgentPlan:
    """The run's volumes, where its log goes, and which container is the operator."""

    inputs: tuple[VolumeBinding, ...]
    outputs: tuple[VolumeBinding, ...]
    log_key: str
    container: str
    work: str = WORK_FOLDER

    def to_json(self) -> str:
        """The plan as compact JSON (the value of `AORTA_AGENT_PLAN`)."""
        return json.dumps(
            {
                "work": self.work,
                "container": self.container,
                "log_key": self.log_key,
                "inputs": [_binding(b) for b in self.inputs],
                "outputs": [_binding(b) for b in self.outputs],
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AgentPlan:
        """Reads `AORTA_AGENT_PLAN`; `PlanError` naming the variable when absent or malformed."""
        raw = environ.get(PLAN_VARIABLE, "")
        if not raw:
            raise PlanError(f"{PLAN_VARIABLE} is not set: the agent runs inside an operator pod")
        try:
            data = json.loads(raw)
            return cls(
                work=str(data["work"]),
                container=str(data["container"]),
                log_key=str(data["log_key"]),
                inputs=tuple(_read_binding(item) for item in data["inputs"]),
                outputs=tuple(_read_binding(item) for item in data["outputs"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise PlanError(f"{PLAN_VARIABLE} is malformed: {error!r}") from None


def _binding(binding: VolumeBinding) -> dict[str, str]:
    return {"entry": binding.entry_name, "path": binding.path, "prefix": binding.blob_prefix}


def _read_binding(item: Any) -> VolumeBinding:
    return VolumeBinding(
        entry_name=str(item["entry"]), path=str(item["path"]), blob_prefix=str(item["prefix"])
    )
