"""Executors: where operator runs happen (local processes, Kubernetes pods)."""

from aorta.executors.port import (
    Executor,
    KnownRuns,
    OperatorRun,
    Resources,
    RunOutcome,
    RunReason,
    RunTimes,
    VolumeBinding,
)

__all__ = [
    "Executor",
    "KnownRuns",
    "OperatorRun",
    "Resources",
    "RunOutcome",
    "RunReason",
    "RunTimes",
    "VolumeBinding",
]
