"""Free ports: distinct, released before they are returned, a preferred one kept only when free,
ports for servers started again drawn below the kernel's ephemeral range; and
`aorta.testing.ports` is the library's implementation, not a copy."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from aorta.children import ports as local_ports
from aorta.testing import ports as testing_ports


def test_the_testing_helpers_are_the_library_functions() -> None:
    assert testing_ports.free_port is local_ports.free_port
    assert testing_ports.free_ports is local_ports.free_ports
    assert testing_ports.restart_safe_port is local_ports.restart_safe_port


def test_ports_are_distinct_and_released() -> None:
    ports = local_ports.free_ports(8)

    assert len(set(ports)) == 8
    with socket.socket() as again:  # nothing of ours holds it any more
        again.bind(("127.0.0.1", ports[0]))


def test_a_preferred_port_is_given_only_when_it_is_free() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = int(holder.getsockname()[1])

        assert local_ports.free_port(preferred=taken) != taken

    assert local_ports.free_port(preferred=taken) == taken


def test_a_restart_safe_port_is_free_and_below_the_ephemeral_range() -> None:
    low = local_ports.ephemeral_low()
    ports = {local_ports.restart_safe_port() for _ in range(20)}

    assert all(low // 2 <= port < low for port in ports)
    with socket.socket() as again:
        again.bind(("127.0.0.1", ports.pop()))


def test_a_restart_safe_port_skips_taken_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", local_ports.restart_safe_port()))
        taken = int(holder.getsockname()[1])
        draw = local_ports.random.randrange
        first = iter([taken, taken])  # then random ones again
        monkeypatch.setattr(
            local_ports.random, "randrange", lambda *bounds: next(first, None) or draw(*bounds)
        )

        assert local_ports.restart_safe_port() != taken


def test_the_range_is_read_from_the_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("40000\t60999\n")
    monkeypatch.setattr(local_ports, "EPHEMERAL_RANGE", setting)
    assert local_ports.ephemeral_low() == 40000
    monkeypatch.setattr(local_ports, "EPHEMERAL_RANGE", tmp_path / "missing")
    assert local_ports.ephemeral_low() == local_ports.DEFAULT_EPHEMERAL_LOW
