"""Free ports: distinct, released before they are returned, a preferred one kept only when free;
and `aorta.testing.ports` is the library's implementation, not a copy."""

from __future__ import annotations

import socket

from aorta.children import ports as local_ports
from aorta.testing import ports as testing_ports


def test_the_testing_helpers_are_the_library_functions() -> None:
    assert testing_ports.free_port is local_ports.free_port
    assert testing_ports.free_ports is local_ports.free_ports


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
