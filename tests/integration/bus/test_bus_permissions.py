"""The closed bus, against a real nats-server with the platform's users: nobody connects
without credentials, and each user may send and serve only what its permissions name; a refused
request never reaches the service."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator, Iterator

import nats
import nats.errors
import pytest

from aorta import bus_permissions, subjects
from aorta.bus import BusOptions, Request, make_event
from aorta.bus.credentials import BusCredentials, generate_credentials
from aorta.bus.nats import NatsBus
from aorta.bus.nats_server import NatsServerProcess
from aorta.errors import Unavailable
from aorta.testing.nats import BusFactory
from aorta.testing.nats import nats_server as started_nats_server

CREDENTIALS = generate_credentials(bus_permissions.bus_users())


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServerProcess]:
    with started_nats_server(tmp_path_factory.mktemp("nats"), users=CREDENTIALS) as server:
        yield server


@pytest.fixture
async def login(closed_server: NatsServerProcess) -> AsyncIterator[BusFactory]:
    factory = BusFactory(closed_server.url, options=BusOptions(stream_window=2))
    yield factory
    await factory.close_all()


async def as_user(factory: BusFactory, user: str) -> NatsBus:
    bus = await factory(f"test-{user}", credentials=CREDENTIALS[user])
    assert isinstance(bus, NatsBus)
    return bus


class Refusals:
    """What the server told a raw client it refused."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._arrived = asyncio.Event()

    async def on_error(self, exc: Exception) -> None:
        self.errors.append(str(exc))
        self._arrived.set()

    async def told(self, fragment: str, within: float = 30.0) -> None:
        """Returns once the server refused something with `fragment` in its words (any case).
        Waited for, not read after a flush: the server may send a refusal after the flush's
        PONG (a refused publish to the JetStream API came after it in some runs)."""
        async with asyncio.timeout(within):
            while not any(fragment in error.lower() for error in self.errors):
                self._arrived.clear()
                await self._arrived.wait()


async def raw_client(server: NatsServerProcess, user: str, refusals: Refusals) -> nats.NATS:
    """A plain nats-py client as `user`, as an integration would connect."""
    return await nats.connect(
        server.url,
        user=user,
        password=CREDENTIALS[user].password,
        inbox_prefix=bus_permissions.inbox_prefix(user),
        error_cb=refusals.on_error,
        allow_reconnect=False,
    )


def test_the_config_holding_the_passwords_is_readable_by_its_owner_only(
    closed_server: NatsServerProcess,
) -> None:
    assert stat.S_IMODE(closed_server.config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(closed_server.directory.stat().st_mode) == 0o700
    events = closed_server.events_credentials_file
    assert stat.S_IMODE(events.stat().st_mode) == 0o600
    assert json.loads(events.read_text()) == {
        "user": "events",
        "password": CREDENTIALS["events"].password,
    }
    for user in ("gateway", "scheduler"):
        assert CREDENTIALS[user].password not in closed_server.log_file.read_text()
    assert closed_server.url.startswith("nats://127.0.0.1:")


async def test_an_anonymous_client_is_refused(closed_server: NatsServerProcess) -> None:
    with pytest.raises(Unavailable, match=r"anonymous.*[Aa]uthorization"):
        await NatsBus.connect(
            closed_server.url, name="anonymous", default_timeout=1.0, connect_timeout=3.0
        )


async def test_a_wrong_password_is_refused_and_never_shown(
    closed_server: NatsServerProcess,
) -> None:
    wrong = BusCredentials("gateway", "not-the-password-0123456789")
    with pytest.raises(Unavailable) as refused:
        await NatsBus.connect(
            closed_server.url,
            name="guess",
            default_timeout=1.0,
            connect_timeout=3.0,
            credentials=wrong,
        )
    assert "not-the-password" not in str(refused.value)
    assert "not-the-password" not in repr(wrong)


async def test_the_events_user_cannot_stop_the_platform(
    closed_server: NatsServerProcess, login: BusFactory
) -> None:
    scheduler = await as_user(login, "scheduler")
    handled: list[Request] = []

    async def platform_stop(request: Request) -> bytes:
        handled.append(request)
        return b"{}"

    await scheduler.serve(subjects.SCHEDULER_PLATFORM_STOP, platform_stop, queue="scheduler")
    refusals = Refusals()
    integration = await raw_client(closed_server, "events", refusals)
    try:
        with pytest.raises(nats.errors.TimeoutError):
            await integration.request(subjects.SCHEDULER_PLATFORM_STOP, b"{}", timeout=0.5)
        await integration.publish(subjects.SCHEDULER_PLATFORM_STOP, b"{}")
        await integration.flush()
        await refusals.told("permissions violation for publish")
    finally:
        await integration.close()
    # The monitor, whose verb Clara.Stop is, may; the gateway may not go around it.
    monitor = await as_user(login, "monitor")
    assert await monitor.request(subjects.SCHEDULER_PLATFORM_STOP, b"{}") == b"{}"
    gateway = await as_user(login, "gateway")
    with pytest.raises(Unavailable):
        await gateway.request(subjects.SCHEDULER_PLATFORM_STOP, b"{}", timeout=0.5)
    assert len(handled) == 1


async def test_the_events_user_reads_events_and_audit_records_and_nothing_else(
    closed_server: NatsServerProcess, login: BusFactory
) -> None:
    refusals = Refusals()
    integration = await raw_client(closed_server, "events", refusals)
    try:
        events = await integration.subscribe(f"{bus_permissions.EVENTS_PREFIX}.>")
        audit = await integration.subscribe("aorta.audit.>")
        await integration.subscribe(subjects.PIPELINES_LIST)
        await integration.flush()
        pipelines = await as_user(login, "pipelines")
        await pipelines.publish_event(make_event("pipelines", "pipeline", "p1", "created", {}))
        gateway = await as_user(login, "gateway")
        await gateway.publish("aorta.audit.jobs.create", b"record")
        with pytest.raises(Unavailable):
            await gateway.request(subjects.PIPELINES_LIST, b"", timeout=0.5)
        assert (await events.next_msg(timeout=30.0)).subject == "aorta.events.pipeline.p1.created"
        assert (await audit.next_msg(timeout=30.0)).data == b"record"
        # No JetStream consumer either: its deliver subject could be a service's verb.
        await integration.publish(f"$JS.API.CONSUMER.CREATE.{bus_permissions.EVENTS_STREAM}", b"{}")
        await integration.flush()
        await refusals.told("permissions violation for subscription")
        await refusals.told('publish to "$js.api.consumer.create')
    finally:
        await integration.close()


async def test_every_verb_is_served_by_its_service_and_called_by_its_callers(
    login: BusFactory,
) -> None:
    buses = {user: await as_user(login, user) for user in bus_permissions.SERVICE_ACCESS}

    def answer(subject: str):  # type: ignore[no-untyped-def]
        async def handle(request: Request) -> bytes:
            return subject.encode()

        return handle

    for subject in bus_permissions.rpc_subjects():
        service = bus_permissions.serving_service(subject)
        await buses[service].serve(subject, answer(subject), queue=service)
    calls = 0
    for caller, access in bus_permissions.SERVICE_ACCESS.items():
        for subject in sorted(access.calls):
            assert await buses[caller].request(subject, b"") == subject.encode(), caller
            calls += 1
    assert calls >= len(bus_permissions.rpc_subjects())


async def test_streams_flow_between_permitted_services(login: BusFactory) -> None:
    pipelines = await as_user(login, "pipelines")
    gateway = await as_user(login, "gateway")

    async def listing(request: Request) -> AsyncIterator[bytes]:
        for n in range(10):
            yield str(n).encode()

    await pipelines.serve_stream(subjects.PIPELINES_LIST, listing, queue="pipelines")
    items = [item async for item in gateway.request_stream(subjects.PIPELINES_LIST, b"")]
    assert items == [str(n).encode() for n in range(10)]


async def test_a_service_cannot_serve_another_services_verb(login: BusFactory) -> None:
    payloads = await as_user(login, "payloads")
    handled: list[Request] = []

    async def impostor(request: Request) -> bytes:
        handled.append(request)
        return b"{}"

    await payloads.serve(subjects.SCHEDULER_PLATFORM_STOP, impostor, queue="scheduler")
    monitor = await as_user(login, "monitor")
    with pytest.raises(Unavailable):
        await monitor.request(subjects.SCHEDULER_PLATFORM_STOP, b"{}", timeout=0.5)
    # A negative check: a delivered request would most likely have reached the handler within
    # the request's own 0.5 s; the short wait adds a margin for the handler's task to run.
    await asyncio.sleep(0.1)
    assert handled == []


async def test_an_answer_cannot_be_redirected_onto_a_verb(
    closed_server: NatsServerProcess, login: BusFactory
) -> None:
    scheduler = await as_user(login, "scheduler")
    stopped: list[Request] = []

    async def platform_stop(request: Request) -> bytes:
        stopped.append(request)
        return b"{}"

    await scheduler.serve(subjects.SCHEDULER_PLATFORM_STOP, platform_stop, queue="scheduler")
    pipelines = await as_user(login, "pipelines")

    async def snapshot(request: Request) -> bytes:
        return b"{}"

    await pipelines.serve(subjects.PIPELINES_SNAPSHOT, snapshot, queue="pipelines")
    # The scheduler asks for a snapshot with the platform stop as its reply subject: the
    # pipelines service may answer only into its peers' inboxes, so the server drops it.
    refusals = Refusals()
    raw = await raw_client(closed_server, "scheduler", refusals)
    try:
        await raw.publish(
            subjects.PIPELINES_SNAPSHOT, b"{}", reply=subjects.SCHEDULER_PLATFORM_STOP
        )
        await raw.flush()
    finally:
        await raw.close()
    # A negative check: the flush saw the server take the message, so a forwarded answer
    # would be on its way already; the wait is a margin for it to arrive, not a guess of
    # how long anything takes.
    await asyncio.sleep(0.3)
    assert stopped == []
