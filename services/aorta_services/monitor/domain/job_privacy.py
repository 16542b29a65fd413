"""What a `user` is shown of the GPU processes of other users' jobs (pure, no I/O).

Clara.Utilization names the job and the operator behind each GPU process. A `user` sees its
own jobs only (docs/security.md), so a process of a job it may not read is answered as
`OTHER_USERS_JOB`, without its job id or operator: the node's load stays visible to every
caller, whose load it is does not. Viewers and admins see every process as it is.
"""

from __future__ import annotations

from collections.abc import Iterable

from aorta.gpu.sample import NodeSample
from aorta.ids import JobId


def named_jobs(nodes: Iterable[NodeSample]) -> set[JobId]:
    """The jobs the GPU processes of `nodes` run for."""
    return {
        process.owner.job_id
        for node in nodes
        for gpu in node.gpus
        for process in gpu.processes
        if process.owner is not None
    }
