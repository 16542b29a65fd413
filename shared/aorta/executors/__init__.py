"""Executors: where operator runs happen (local processes, Kubernetes pods)."""

from aorta.executors.port import (
    Executor,
    OperatorRun,
    Resources,
    RunOutcome,
    RunReason,
    RunTimes,
    VolumeBinding,
)

__all__ = [
    "Executor",
    "OperatorRun",
    "Resources",
    "RunOutcome",
    "RunReason",
    "RunTimes",
    "VolumeBinding",
]
