"""The attack on a default platform, replayed against `aorta up --auth --tls auto`.

An anonymous client, a client that does not trust the platform's CA, a tenant that runs an
operator trying to read the platform's files and talk to its bus, a second tenant that goes
after the first one's job, and a viewer: every step the attack took before now fails, the
owners and the admin keep working, NVIDIA's client runs its whole flow over TLS with a token,
the audit log holds the refusals, and no secret set in the platform's environment shows up in
any log line or answer.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from aorta.api import (
    clara_pb2,
    clara_pb2_grpc,
    common_pb2,
    jobs_pb2,
    jobs_pb2_grpc,
    payloads_pb2,
    payloads_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
)
from aorta.testing.clara_client import run_clara_python
from aorta.testing.embedded import AORTA, aorta_up, make_token
from aorta.testing.oidc import DEFAULT_AUDIENCE, IdentityProvider
from aorta.testing.ports import free_port
from tests.e2e.security_snippets import BUS_PROBE, COPY_PIPELINE, NVIDIA_FLOW, PROBE
from tests.unit.gateway.certificates import make_pki

pytestmark = pytest.mark.timeout(300)

SECRETS = {
    "AORTA_S3_SECRET_KEY": "s3-secret-7f3a9c21",
    "AORTA_NATS_PASSWORD": "nats-secret-51be0d94",
    "PACS_PASSWORD": "pacs-secret-c0ffee42",
}
"""Values set in the platform's environment that must never come back out."""


@dataclass(frozen=True)
class Secured:
    """A running secured platform and the credentials of its people."""

    address: str
    data: Path
    ca: Path
    log: Path
    tokens: dict[str, str]
    identity: IdentityProvider

    def channel(self, who: str | None) -> grpc.Channel:
        """A channel as `who` (None: anonymous), trusting the platform's CA."""
        return self.channel_with(self.tokens[who] if who is not None else None)

    def channel_with(self, token: str | None) -> grpc.Channel:
        """A channel presenting `token` (None: none), trusting the platform's CA."""
        trusted = grpc.ssl_channel_credentials(self.ca.read_bytes())
        if token is not None:
            credentials = grpc.access_token_call_credentials(token)
            trusted = grpc.composite_channel_credentials(trusted, credentials)
        return grpc.secure_channel(self.address, trusted)

    def cli(self, who: str | None, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "AORTA_HOST": self.address, "AORTA_CA": str(self.ca)}
        env.pop("AORTA_TOKEN", None)
        if who is not None:
            env["AORTA_TOKEN"] = self.tokens[who]
        return subprocess.run(
            [AORTA, *args], capture_output=True, text=True, env=env, timeout=180, check=False
        )


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    root = tmp_path_factory.mktemp("secured")
    data, port = root / "data", free_port()
    identity = IdentityProvider(root)
    environ = {
        **SECRETS,
        "AORTA_LOG_LEVEL": "debug",
        "AORTA_OIDC_ISSUER": identity.issuer,
        "AORTA_OIDC_AUDIENCE": DEFAULT_AUDIENCE,
        "AORTA_OIDC_JWKS": str(identity.jwks_path),
    }
    with aorta_up(data, port, environ=environ, args=["--auth", "--tls", "auto"]):
        tokens = {"admin": (data / "admin.token").read_text().strip()}
        for name, role in (("alice", "user"), ("bob", "user"), ("vera", "viewer")):
            tokens[name] = make_token(data, name, role)
        yield Secured(
            address=f"127.0.0.1:{port}",
            data=data,
            ca=data / "tls" / "ca.pem",
            log=root / "aorta-up.log",
            tokens=tokens,
            identity=identity,
        )


def _bus_port(data: Path) -> int:
    """The port of the platform's bus, as its nats-server logged it."""
    log = (data / "nats" / "nats-server.log").read_text()
    found = re.search(r"Listening for client connections on [^\s]*:(\d+)", log)
    assert found, "the bus's log does not say where it listens"
    return int(found.group(1))


def _code(call: Callable[[], object]) -> grpc.StatusCode | None:
    """The status a refused call ended with; None when it succeeded."""
    try:
        call()
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        return code
    return None


def test_the_data_dir_and_its_secrets_are_the_platforms_alone(platform: Secured) -> None:
    assert platform.data.stat().st_mode & 0o777 == 0o700
    for name in ("admin.token", "tokens.yaml", "state.db"):
        assert (platform.data / name).stat().st_mode & 0o777 == 0o600, name


def test_anonymous_and_untrusting_clients_are_refused(platform: Secured, tmp_path: Path) -> None:
    with platform.channel(None) as channel:
        jobs = jobs_pb2_grpc.JobsStub(channel)
        assert _code(lambda: list(jobs.List(jobs_pb2.JobsListRequest()))) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        clara = clara_pb2_grpc.ClaraStub(channel)
        assert _code(lambda: clara.Stop(clara_pb2.ClaraStopRequest())) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
    refused = platform.cli(None, "list", "jobs")
    assert refused.returncode != 0 and "token" in refused.stderr.lower()
    with grpc.insecure_channel(platform.address) as plain:
        listing = jobs_pb2_grpc.JobsStub(plain).List
        assert _code(lambda: list(listing(jobs_pb2.JobsListRequest(), timeout=10))) == (
            grpc.StatusCode.UNAVAILABLE
        )


def _list_jobs(channel: grpc.Channel) -> grpc.StatusCode | None:
    jobs = jobs_pb2_grpc.JobsStub(channel)
    return _code(lambda: list(jobs.List(jobs_pb2.JobsListRequest(), timeout=30)))


def test_tokens_from_the_file_and_from_the_identity_provider_both_work(
    platform: Secured,
) -> None:
    with platform.channel("vera") as channel:
        assert _list_jobs(channel) is None
    identity = platform.identity
    with platform.channel_with(identity.sign("olivia", ["user"])) as channel:
        assert _list_jobs(channel) is None
    refused = {
        "expired": identity.sign("olivia", ["user"], expires_in=-120),
        "wrongly signed": identity.sign("olivia", ["user"], key=identity.new_key()),
        "for another audience": identity.sign("olivia", ["user"], audience="someone-else"),
        "unknown token": "aorta_" + "x" * 43,
    }
    for why, token in refused.items():
        with platform.channel_with(token) as channel:
            assert _list_jobs(channel) == grpc.StatusCode.UNAUTHENTICATED, why


def test_mutual_tls_refuses_a_client_without_a_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    port = free_port()
    args = ["--tls-cert", str(pki.server.cert_file), "--tls-key", str(pki.server.key_file)]
    args += ["--tls-client-ca", str(pki.ca.cert_file)]
    address = f"127.0.0.1:{port}"
    certified = grpc.ssl_channel_credentials(
        pki.ca.cert, private_key=pki.client.key, certificate_chain=pki.client.cert
    )
    with aorta_up(tmp_path / "data", port, args=args, credentials=certified):
        with grpc.secure_channel(address, certified) as channel:
            assert _list_jobs(channel) is None
        anonymous = grpc.ssl_channel_credentials(pki.ca.cert)
        with grpc.secure_channel(address, anonymous) as channel:
            assert _list_jobs(channel) == grpc.StatusCode.UNAVAILABLE


@pytest.fixture(scope="module")
def attack(platform: Secured, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Alice runs an operator that tries to read the platform's data and to use its bus."""
    work = tmp_path_factory.mktemp("attack")
    script = PROBE.format(
        data=platform.data, bus_probe=BUS_PROBE.format(port=_bus_port(platform.data))
    )
    definition = work / "probe.yml"
    definition.write_text(
        textwrap.dedent(
            """\
            api-version: 0.4.0
            name: probe
            operators:
            - name: probe
              container:
                image: busybox
                command: [sh, -c, {script}]
              input: [{{path: /input}}]
              output: [{{path: /output}}]
            """
        ).format(script=json.dumps(script))
    )
    (work / "input").mkdir()
    (work / "input" / "patient.txt").write_text("Jane Doe, CT chest")
    ran = platform.cli(
        "alice",
        "run",
        "-p",
        str(definition),
        "-f",
        str(work / "input"),
        "-o",
        str(work / "out"),
        "--json",
    )
    assert ran.returncode == 0, ran.stderr
    document = json.loads(ran.stdout)
    report = (work / "out" / "probe" / "report.txt").read_text()
    return {
        "report": report,
        **{key: document[key] for key in ("job_id", "payload_id", "pipeline_id")},
    }


def test_the_operator_cannot_reach_the_platform(attack: dict[str, str]) -> None:
    lines = dict(line.split(": ", 1) for line in attack["report"].splitlines())
    assert lines["uid"] != "0"
    for target in ("shadow", "state", "blobs", "tokens", "admin-token"):
        assert lines[target] == "refused", (target, attack["report"])
    assert lines["bus"] == "refused", attack["report"]
    assert lines["secrets in environment"] == "0"


def test_one_tenant_cannot_touch_anothers_job(platform: Secured, attack: dict[str, str]) -> None:
    job_id = common_pb2.Identifier(value=attack["job_id"])
    payload_id = common_pb2.Identifier(value=attack["payload_id"])
    pipeline_id = common_pb2.Identifier(value=attack["pipeline_id"])
    with platform.channel("bob") as channel:
        jobs = jobs_pb2_grpc.JobsStub(channel)
        listed = [
            answer.job_details.job_id.value for answer in jobs.List(jobs_pb2.JobsListRequest())
        ]
        assert attack["job_id"] not in listed
        status = jobs_pb2.JobsStatusRequest(job_id=job_id)
        assert _code(lambda: jobs.Status(status)) == grpc.StatusCode.PERMISSION_DENIED
        payloads = payloads_pb2_grpc.PayloadsStub(channel)
        details = payloads_pb2.PayloadsDetailsRequest(payload_id=payload_id)
        assert _code(lambda: list(payloads.Details(details))) == grpc.StatusCode.PERMISSION_DENIED
        download = payloads_pb2.PayloadsDownloadRequest(
            payload_id=payload_id, name="/operators/probe/report.txt"
        )
        assert _code(lambda: list(payloads.Download(download))) == grpc.StatusCode.PERMISSION_DENIED
        logs = jobs_pb2.JobsReadLogsRequest(job_id=job_id, operator_name="probe")
        assert _code(lambda: list(jobs.ReadLogs(logs))) == grpc.StatusCode.PERMISSION_DENIED
        cancel = jobs_pb2.JobsCancelRequest(job_id=job_id)
        assert _code(lambda: jobs.Cancel(cancel)) == grpc.StatusCode.PERMISSION_DENIED
        delete = payloads_pb2.PayloadsDeleteRequest(payload_id=payload_id)
        assert _code(lambda: payloads.Delete(delete)) == grpc.StatusCode.PERMISSION_DENIED
        remove = pipelines_pb2.PipelinesRemoveRequest(pipeline_id=pipeline_id)
        pipelines = pipelines_pb2_grpc.PipelinesStub(channel)
        assert _code(lambda: pipelines.Remove(remove)) == grpc.StatusCode.PERMISSION_DENIED
        stop = clara_pb2_grpc.ClaraStub(channel).Stop
        assert _code(lambda: stop(clara_pb2.ClaraStopRequest())) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
    with platform.channel("vera") as channel:
        viewer_jobs = jobs_pb2_grpc.JobsStub(channel)
        listed = [
            answer.job_details.job_id.value
            for answer in viewer_jobs.List(jobs_pb2.JobsListRequest())
        ]
        assert attack["job_id"] in listed
        read = viewer_jobs.Status(jobs_pb2.JobsStatusRequest(job_id=job_id))
        assert read.job_id.value == attack["job_id"]
        viewer_download = payloads_pb2_grpc.PayloadsStub(channel).Download
        request = payloads_pb2.PayloadsDownloadRequest(
            payload_id=payload_id, name="/operators/probe/report.txt"
        )
        assert _code(lambda: list(viewer_download(request))) == (grpc.StatusCode.PERMISSION_DENIED)
    with platform.channel("admin") as channel:
        chunks = payloads_pb2_grpc.PayloadsStub(channel).Download(
            payloads_pb2.PayloadsDownloadRequest(
                payload_id=payload_id, name="/operators/probe/report.txt"
            )
        )
        assert b"".join(chunk.data for chunk in chunks) == attack["report"].encode()


def test_nvidia_client_runs_its_flow_over_tls_with_a_token(platform: Secured) -> None:
    ran = run_clara_python(
        NVIDIA_FLOW,
        args=[platform.address, str(platform.ca), platform.tokens["alice"], COPY_PIPELINE],
        timeout=180,
    )
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout)
    assert seen == {"state": 3, "status": 1, "downloaded": "scan"}


def test_the_audit_log_holds_the_refusals(platform: Secured, attack: dict[str, str]) -> None:
    test_one_tenant_cannot_touch_anothers_job(platform, attack)
    assert platform.cli("alice", "audit", "-o", "json").returncode != 0
    listed = platform.cli("admin", "audit", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    records = json.loads(listed.stdout)
    refused = [r for r in records if r["subject"] == "bob" and r["result"] != "ok"]
    methods = {r["method"].rsplit("/", 1)[-1] for r in refused}
    assert {"Status", "Details", "Download", "Cancel", "Delete", "Stop"} <= methods
    assert any(r["method"].endswith("Jobs/Create") and r["subject"] == "alice" for r in records)
    anonymous = [r for r in records if r["subject"] == "" and r["result"] != "ok"]
    assert anonymous, "refused anonymous calls are on record"


def test_no_secret_leaks_into_logs_or_answers(platform: Secured, attack: dict[str, str]) -> None:
    texts = [platform.log.read_text(), attack["report"]]
    texts += [
        p.read_text(errors="replace") for p in (platform.data / "logs").rglob("*") if p.is_file()
    ]
    for who in ("alice", "admin"):
        shown = platform.cli(who, "describe", "job", "-j", attack["job_id"], "--json")
        texts.append(shown.stdout + shown.stderr)
    secrets = [*SECRETS.values(), *platform.tokens.values()]
    for text in texts:
        for secret in secrets:
            assert secret not in text
