"""The create body of a Triton server's container: its flags, the read-only repository, ports on
127.0.0.1 only, isolation, labels, and a device request for exactly its GPUs on either engine."""

from __future__ import annotations

from aorta.triton.container.spec import (
    ServerContainer,
    container_name,
    create_body,
    podman_spec,
    published_port,
)
from aorta.triton.server_flags import MemoryPools

IMAGE = "nvcr.io/nvidia/tritonserver:24.08-py3"
MiB = 1024**2


def server(gpus: tuple[int, ...] = ()) -> ServerContainer:
    return ServerContainer(
        image=IMAGE,
        repository="/srv/aorta/triton/f00d/repository",
        instance="aorta",
        server_id="s1",
        gpus=gpus,
        pools=MemoryPools(cuda_bytes=128 * MiB, pinned_bytes=512 * MiB),
    )


def test_a_server_without_gpus_runs_tritonserver_with_the_cpu_flags() -> None:
    body = create_body(server())
    assert body["Image"] == IMAGE
    command = body["Cmd"]
    assert command[0] == "tritonserver"
    assert "--model-repository=/models" in command
    assert "--model-control-mode=explicit" in command
    assert {"--http-port=8000", "--grpc-port=8001", "--metrics-port=8002"} <= set(command)
    assert [flag for flag in command if "memory-pool" in flag or "gpu-metrics" in flag] == [
        "--allow-gpu-metrics=false",
        "--pinned-memory-pool-byte-size=0",
        "--cuda-memory-pool-byte-size=0:0",
    ]
    assert not any(flag.startswith("--backend-directory") for flag in command)
    host = body["HostConfig"]
    assert host["DeviceRequests"] == [] and "Devices" not in host
    # Triton images say NVIDIA_VISIBLE_DEVICES=all; an NVIDIA runtime must expose none.
    assert body["Env"] == ["NVIDIA_VISIBLE_DEVICES=void"]


def test_the_repository_alone_is_mounted_read_only_and_ports_are_on_loopback() -> None:
    host = create_body(server())["HostConfig"]
    assert host["Binds"] == ["/srv/aorta/triton/f00d/repository:/models:ro"]
    assert host["PortBindings"] == {
        "8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
        "8001/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
    }
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Privileged"] is False
    assert host["Init"] is True


def test_labels_and_name_let_a_restarted_service_find_its_containers() -> None:
    body = create_body(server())
    assert body["Labels"] == {
        "aorta.instance": "aorta",
        "aorta.component": "triton",
        "aorta.triton.server": "s1",
    }
    assert container_name("aorta", "s1") == "aorta-triton-aorta-s1"


def test_docker_gets_a_device_request_for_exactly_the_assigned_gpus() -> None:
    body = create_body(server((1, 3)))
    assert body["HostConfig"]["DeviceRequests"] == [
        {"Driver": "nvidia", "DeviceIDs": ["1", "3"], "Capabilities": [["gpu"]]}
    ]
    assert body["Env"] == ["NVIDIA_VISIBLE_DEVICES=1,3"]
    assert [flag for flag in body["Cmd"] if "memory-pool" in flag] == [
        f"--pinned-memory-pool-byte-size={512 * MiB}",
        f"--cuda-memory-pool-byte-size=0:{128 * MiB}",
        f"--cuda-memory-pool-byte-size=1:{128 * MiB}",
    ]


def test_podman_gets_the_same_container_through_its_own_api_with_cdi_gpus() -> None:
    spec = podman_spec(server((2, 0)))
    assert spec["devices"] == [{"path": "nvidia.com/gpu=2"}, {"path": "nvidia.com/gpu=0"}]
    assert spec["env"] == {"NVIDIA_VISIBLE_DEVICES": "2,0"}
    assert spec["command"] == create_body(server((2, 0)))["Cmd"]
    assert [flag for flag in spec["command"] if "cuda-memory-pool" in flag] == [
        f"--cuda-memory-pool-byte-size=0:{128 * MiB}",
        f"--cuda-memory-pool-byte-size=1:{128 * MiB}",
    ]
    assert spec["mounts"] == [
        {
            "type": "bind",
            "source": "/srv/aorta/triton/f00d/repository",
            "destination": "/models",
            "options": ["ro", "rbind"],
        }
    ]
    assert {(m["host_ip"], m["container_port"], m["host_port"]) for m in spec["portmappings"]} == {
        ("127.0.0.1", 8000, 0),
        ("127.0.0.1", 8001, 0),
    }
    assert (spec["cap_drop"], spec["no_new_privileges"], spec["privileged"]) == (
        ["ALL"],
        True,
        False,
    )
    assert spec["init"] is True
    assert spec["labels"]["aorta.triton.server"] == "s1"


def test_a_cpu_server_on_podman_asks_for_no_device() -> None:
    spec = podman_spec(server())
    assert spec["devices"] == []
    assert spec["env"] == {"NVIDIA_VISIBLE_DEVICES": "void"}


def test_the_published_port_is_read_from_the_inspect_document() -> None:
    inspected = {
        "NetworkSettings": {
            "Ports": {
                "8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "41001"}],
                "8001/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
            }
        }
    }
    assert published_port(inspected, 8000) == 41001
    assert published_port(inspected, 8001) is None
    assert published_port({}, 8000) is None
