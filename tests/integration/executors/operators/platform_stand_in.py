"""A stand-in for the platform: runs one operator through a `LocalExecutor`, then waits for it.

Usage: python platform_stand_in.py WORK_FOLDER PIDS_FOLDER NATIVE_LEADER. The operator is a
shell that starts a grandchild and records both pids under PIDS_FOLDER; the test kills this
process with SIGKILL and checks that the operator's whole process group goes with it.
NATIVE_LEADER is where the native group leader is (a missing file: the Python leader runs).
"""

import asyncio
import sys
from pathlib import Path

from aorta import ids, payload_layout
from aorta.blobs.local import LocalBlobStore
from aorta.executors import OperatorRun, Resources
from aorta.executors.local import process_group
from aorta.executors.local.executor import LocalExecutor

COMMAND = (
    "sh",
    "-c",
    'sleep 60 & echo $! > "$PIDS/grandchild.part"; echo $$ > "$PIDS/child.part"; '
    'mv "$PIDS/grandchild.part" "$PIDS/grandchild"; mv "$PIDS/child.part" "$PIDS/child"; wait',
)


async def main(work: Path, pids: Path) -> None:
    blobs = await LocalBlobStore.open(work / "blobs")
    executor = LocalExecutor(blobs, work / "runs")
    job_id, payload_id = ids.new_id(), ids.new_id()
    run = OperatorRun(
        run_id="stand-in",
        job_id=job_id,
        job_name="stand-in",
        payload_id=payload_id,
        operator="sleeper",
        attempt=1,
        image="aorta/test",
        tag="0.1.0",
        command=COMMAND,
        inputs=(),
        outputs=(),
        resources=Resources(),
        timeout=120,
        log_key=payload_layout.operator_log_key(job_id, "sleeper"),
        environment={"PIDS": str(pids)},
    )
    await executor.start(run)
    await executor.wait(run.run_id)


if __name__ == "__main__":
    process_group.NATIVE_LEADER = Path(sys.argv[3])
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
