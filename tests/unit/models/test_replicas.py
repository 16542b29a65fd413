"""Which models replicas are known dead without waiting out their heartbeat: those of this host
whose process is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from aorta_services.models.replicas import gone_from_this_host, replica_name

HOST = socket.gethostname()


def test_a_replica_is_named_after_its_host_and_process() -> None:
    host, pid, suffix = replica_name().rsplit("-", 2)
    assert (host, pid, len(suffix)) == (HOST, str(os.getpid()), 8)


def test_a_replica_of_this_host_whose_process_ended_is_gone() -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    assert gone_from_this_host(f"{HOST}-{finished.pid}-abcd1234", replica_name())


def test_a_running_process_or_another_host_or_a_foreign_name_is_not_judged() -> None:
    me = replica_name()
    assert not gone_from_this_host(me, me)
    # Two replicas in one process (as tests run them) see each other alive.
    assert not gone_from_this_host(f"{HOST}-{os.getpid()}-00000000", me)
    assert not gone_from_this_host(f"{HOST}-{os.getppid()}-abcd1234", me)
    assert not gone_from_this_host(f"{HOST}x-999999-abcd1234", me)
    assert not gone_from_this_host("first", me)
