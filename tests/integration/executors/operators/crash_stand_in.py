"""A stand-in for a platform killed at a chosen moment of one operator run.

Usage: python crash_stand_in.py WORK_FOLDER JOB_ID PAYLOAD_ID SIDE_FILE MOMENT. The operator
appends a line to SIDE_FILE (outside its workspace, so each run of it shows) and writes
`/output/result.txt`. MOMENT `exited`: the operator exits 0 and storing its outputs never
finishes; `running`: the operator sleeps. Either way `<SIDE_FILE>.moment` appears once the
moment is reached, and the test kills this process with SIGKILL there.
"""

import asyncio
import sys
from collections.abc import AsyncIterable
from pathlib import Path

from aorta import payload_layout
from aorta.blobs import BlobInfo
from aorta.blobs.local import LocalBlobStore
from aorta.executors import OperatorRun, Resources, VolumeBinding
from aorta.executors.local.executor import LocalExecutor


class StuckOutputs:
    """The blob store, except that a put under `prefix` marks the moment and never ends."""

    def __init__(self, blobs: LocalBlobStore, prefix: str, marker: Path) -> None:
        self._blobs = blobs
        self._prefix = prefix
        self._marker = marker

    def __getattr__(self, name: str) -> object:
        return getattr(self._blobs, name)

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> BlobInfo:
        if key.startswith(self._prefix):
            self._marker.write_text(key)
            await asyncio.Event().wait()
        return await self._blobs.put(key, chunks)


async def main(work: Path, job_id: str, payload_id: str, side: Path, moment: str) -> None:
    marker = Path(f"{side}.moment")
    output = payload_layout.operator_output_prefix(payload_id, "op", None)
    blobs = StuckOutputs(await LocalBlobStore.open(work / "blobs"), output, marker)
    executor = LocalExecutor(blobs, work / "runs")  # type: ignore[arg-type]
    script = f'echo ran >> "{side}"; echo result > ../volumes/output/result.txt'
    if moment == "running":
        script += f'; echo running > "{marker}"; exec sleep 60'
    run = OperatorRun(
        run_id=f"{job_id}-op-1",
        job_id=job_id,
        job_name="crash",
        payload_id=payload_id,
        operator="op",
        attempt=1,
        image="aorta/test",
        tag="0.1.0",
        command=("sh", "-c", script),
        inputs=(),
        outputs=(VolumeBinding("op", "/output", output),),
        resources=Resources(),
        timeout=120,
        log_key=payload_layout.operator_log_key(job_id, "op"),
    )
    await executor.start(run)
    await executor.wait(run.run_id)


if __name__ == "__main__":
    work, job_id, payload_id, side, moment = sys.argv[1:6]
    asyncio.run(main(Path(work), job_id, payload_id, Path(side), moment))
