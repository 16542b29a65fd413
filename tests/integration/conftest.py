"""Fixtures integration tests of several folders share: a real nats-server per test module,
and a private Podman engine (a Docker Engine API on its own socket, over storage of its own)
with test images built in it.

`nats_server` is one started server for all the tests of a module, on a free port of 127.0.0.1
with its JetStream store under the module's temporary folder, stopped after the module's last
test. A test that needs a server of its own (its users, a restart) starts one with
`aorta.testing.nats`.

One engine per test session, started on first use: `podman_engine.url` is what `DOCKER_HOST`
(or `AORTA_CONTAINER_HOST`) would be, `podman_engine.cli` runs the podman CLI against the same
storage. Every container in that storage is removed when the session ends, and so are the
images (see docs/test-infrastructure.md, "Containers").
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aorta.bus.nats_server import NatsServerProcess
from aorta.testing.images import build_busybox_image, build_python_sdk_image
from aorta.testing.nats import nats_server as started_nats_server
from aorta.testing.podman import PodmanEngine

BUSYBOX_IMAGE = "localhost/aorta-test/busybox:latest"
"""Busybox with no entrypoint: a container's command runs as is (e.g. `sh -c SCRIPT`)."""


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServerProcess]:
    """A started nats-server for the module's tests, stopped after its last one."""
    with started_nats_server(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture(scope="session")
def podman_engine() -> Iterator[PodmanEngine]:
    """A started Podman API service on a private socket and storage, for the whole session."""
    with PodmanEngine() as engine:
        yield engine


@pytest.fixture(scope="session")
def busybox_image(podman_engine: PodmanEngine) -> str:
    """The name of a busybox image in `podman_engine` (`BUSYBOX_IMAGE`)."""
    return build_busybox_image(podman_engine.cli, BUSYBOX_IMAGE)


@pytest.fixture(scope="session")
def python_image(podman_engine: PodmanEngine) -> str:
    """The name of the SDK's Python image in `podman_engine`: `python -m aorta.driver.app
    SCRIPT` and `python3 SCRIPT` run in it (the first session on a host builds its root
    filesystem with debootstrap, about a minute; later ones import it in seconds)."""
    return build_python_sdk_image(podman_engine.cli)
