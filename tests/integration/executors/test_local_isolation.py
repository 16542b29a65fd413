"""Operators cannot reach the platform: run by a root platform (as the suite runs), they run as
the unprivileged operators' user with no supplementary group, cannot read a 0700 data dir, get
none of the platform's environment, and still read their inputs and have their outputs stored.
"""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest

from aorta import payload_layout
from aorta.blobs.local import LocalBlobStore
from aorta.executors import RunReason
from aorta.executors.local.executor import LocalExecutor
from aorta.executors.local.operator_user import DEFAULT_RUN_AS
from tests.integration.executors.conftest import Job, Store, python

pytestmark = pytest.mark.usefixtures("leader")  # every test under each group leader

REPORT = "import json, os; out = os.environ['NVIDIA_CLARA_OUTPUTPATHS'].split(':', 1)[1]"
"""Starts an operator that writes what it found to `out/report.json` (its stored output)."""

SECRETS = {
    "AORTA_S3_SECRET_KEY": "s3-secret-value",
    "AORTA_NATS_PASSWORD": "nats-password-value",
    "AORTA_STATE_STORE": "mongodb://aorta:mongo-password-value@db:27017/aorta",
    "AORTA_AUTH_TOKENS_FILE": "/data/tokens.yaml",
    "DOCKER_HOST": "unix:///run/docker.sock",
    "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock",
}


async def report_of(executor: LocalExecutor, job: Job, store: Store, *code: str) -> object:
    """Runs `REPORT` then `code` (which sets `report`), and returns the stored report."""
    run = job.run(python(REPORT, *code, "json.dump(report, open(out + '/report.json', 'w'))"))
    await executor.start(run)
    outcome = await executor.wait(run.run_id)
    assert outcome.reason is RunReason.COMPLETED, outcome.message
    return json.loads(await store.read(job.output_prefix() + "report.json"))


async def test_operators_run_as_the_unprivileged_user_with_its_group_only(
    executor: LocalExecutor, job: Job, store: Store
) -> None:
    account = pwd.getpwnam(DEFAULT_RUN_AS)
    report = await report_of(
        executor,
        job,
        store,
        "report = [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()]",
    )
    assert report == [account.pw_uid, account.pw_uid, account.pw_gid, account.pw_gid, []]


async def test_an_operator_reads_its_inputs_and_nothing_of_a_0700_data_dir(
    executor: LocalExecutor, job: Job, store: Store, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    stand_ins = [data_dir / name for name in ("state.db", "tokens.yaml", "admin.token")]
    (data_dir / "blobs" / "payloads").mkdir(parents=True)
    stand_ins.append(data_dir / "blobs" / "payloads" / "scan.nii")
    for path in stand_ins:
        path.write_text("the platform's own")
        path.chmod(0o644)  # even files others may read stay out of reach behind the folder
    data_dir.chmod(0o700)
    await store.put(payload_layout.input_prefix(job.payload_id) + "scan.nii", b"the input")
    paths = json.dumps([str(path) for path in stand_ins])

    report = await report_of(
        executor,
        job,
        store,
        "given = os.environ['NVIDIA_CLARA_INPUTPATHS'].split(':', 1)[1]",
        "report = {'input': open(given + '/scan.nii').read(), 'platform': {}}",
        f"for path in {paths}:",
        "    try: report['platform'][path] = open(path).read()",
        "    except OSError as error: report['platform'][path] = type(error).__name__",
    )

    assert isinstance(report, dict)
    assert report["input"] == "the input"
    assert report["platform"] == {str(path): "PermissionError" for path in stand_ins}


async def test_no_variable_of_the_platform_reaches_an_operator(
    blobs: LocalBlobStore,
    job: Job,
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    executor = LocalExecutor(blobs, tmp_path / "work")
    try:
        report = await report_of(executor, job, store, "report = dict(os.environ)")
    finally:
        await executor.close()

    assert isinstance(report, dict)
    assert not [name for name in report if name.startswith("AORTA_")]
    assert not set(SECRETS) & set(report)
    assert not [value for value in SECRETS.values() if value in json.dumps(report)]
    assert report["HOME"].endswith("/home")


async def test_a_missing_user_fails_every_run_and_names_the_fix(
    blobs: LocalBlobStore, job: Job, tmp_path: Path
) -> None:
    executor = LocalExecutor(blobs, tmp_path / "work", run_as="aorta-no-such-user")
    try:
        run = job.run(python("print('never')"))
        await executor.start(run)
        outcome = await executor.wait(run.run_id)
    finally:
        await executor.close()

    assert outcome.reason is RunReason.START_FAILED
    assert "'aorta-no-such-user'" in outcome.message
    assert "AORTA_LOCAL_RUN_AS" in outcome.message
    assert "make setup" in outcome.message


async def test_root_runs_operators_as_root_only_when_asked(
    blobs: LocalBlobStore, job: Job, store: Store, tmp_path: Path
) -> None:
    executor = LocalExecutor(blobs, tmp_path / "work", run_as="root")
    try:
        report = await report_of(executor, job, store, "report = os.geteuid()")
    finally:
        await executor.close()
    assert report == os.geteuid()


async def test_an_unreachable_work_dir_fails_runs_instead_of_falling_back(
    blobs: LocalBlobStore, job: Job, tmp_path: Path
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    executor = LocalExecutor(blobs, private / "work")
    try:
        run = job.run(python("print('never')"))
        await executor.start(run)
        outcome = await executor.wait(run.run_id)
    finally:
        await executor.close()

    assert outcome.reason is RunReason.START_FAILED
    assert f"cannot enter {private}" in outcome.message
