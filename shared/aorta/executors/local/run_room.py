"""What a local run holds on this host before its command starts, made in one worker thread.

Each hop from the event loop to a thread and back waits for a core on a busy machine, and an
operator of a chain waits for every hop of its start. So the checks and folders a run needs
before its command starts are made by one blocking call, in this order:

1. the outcome an earlier process recorded for the run, if any (`OutcomeRecords`): such a run
   is answered from it and never run again, and nothing is made for it;
2. the run's plan, written and locked (`aorta.executors.local.run_plans`), before its folder
   exists, so a sweep never takes the folder of a live run;
3. the workspace (its folders afresh, and the links to its pipeline services' folders) and
   its log file;
4. when the run has no input file to fetch, the hand-over of its folders to the operator's
   user (`aorta.executors.local.work_folders.hand_over`); otherwise that comes after the
   fetch, in a call of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from aorta.errors import Invalid
from aorta.executors.local.operator_user import OperatorUser
from aorta.executors.local.run_environment import link_service_mounts
from aorta.executors.local.run_plans import HeldPlan, RunPlan, RunPlans
from aorta.executors.local.work_folders import hand_over
from aorta.executors.outcome_records import OutcomeRecords
from aorta.executors.port import OperatorRun, RunOutcome
from aorta.executors.run_log import RunLog
from aorta.executors.workspace import Workspace
from aorta.executors.workspace_folders import create_workspace_blocking


@dataclass(frozen=True)
class RunBooks:
    """Where runs keep what outlives their process: plans while they run, outcomes after."""

    plans: RunPlans
    records: OutcomeRecords


@dataclass(frozen=True)
class Room:
    """What `make_room` made: the plan it holds (None when it holds none), or the outcome an
    earlier process recorded, or why the room could not be made (with the plan, if held)."""

    plan: HeldPlan | None = None
    recorded: RunOutcome | None = None
    failure: str | None = None


def make_room(
    run: OperatorRun,
    workspace: Workspace,
    log: RunLog,
    books: RunBooks,
    hand_to: OperatorUser | None,
) -> Room:
    """Steps 1 to 3 of the module docstring, and step 4 when `hand_to` is given. Blocks."""
    recorded = books.records.read_blocking(run.run_id)
    if recorded is not None:
        return Room(recorded=recorded)
    plan = RunPlan(run.run_id, run.job_id, run.operator, run.attempt, run.outputs, run.log_key)
    try:
        held = books.plans.hold(plan)
    except OSError as error:
        return Room(failure=f"no plan of the run: {error}")
    try:
        create_workspace_blocking(workspace, [*run.inputs, *run.outputs])
        if run.service_mounts:
            link_service_mounts(workspace, run.service_mounts)
        log.create_blocking()
    except (Invalid, OSError) as error:
        return Room(plan=held, failure=f"no workspace: {error}")
    if hand_to is not None:
        try:
            hand_over_run(run, workspace, hand_to, fresh=True)
        except OSError as error:
            return Room(plan=held, failure=not_handed_over(hand_to, error))
    return Room(plan=held)


def hand_over_run(
    run: OperatorRun, workspace: Workspace, user: OperatorUser, *, fresh: bool = False
) -> None:
    """Gives `user` the run's workspace with its declared folders (`fresh`: as just made,
    nothing fetched into them). Raises `OSError`."""
    declared = [binding.path for binding in (*run.inputs, *run.outputs)]
    hand_over(workspace, user, declared, fresh=fresh)


def not_handed_over(user: OperatorUser, error: OSError) -> str:
    """Why a run could not start when its workspace could not be handed over."""
    return f"the workspace could not be given to user {user.name!r}: {error}"
