"""`aorta --help` answers at once: it imports click and the command index, nothing heavy.

Asserted on `sys.modules` in a fresh interpreter rather than on time, which depends on the
machine: a module the listing does not need (gRPC, protobuf stubs, rich, yaml, structlog, the
bus client, the services) is what made it slow.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("grpc", "google.protobuf", "rich", "yaml", "structlog", "nats", "aiohttp", "msgspec")
"""Top-level packages (and `google.protobuf`) no listing or usage text needs."""

_PROBE = """
import json, sys
from aorta_services.launch.main import main
sys.argv = ["aorta", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exit:
    code = exit.code
print("\\n@@" + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded_by(*args: str) -> tuple[object, list[str]]:
    """The exit code of `aorta ARGS...` run in a fresh interpreter, and every module it
    imported."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(done.stdout.rsplit("\n@@", 1)[1])
    return report["code"], report["modules"]


def heavy_among(modules: list[str]) -> list[str]:
    return [
        name
        for name in modules
        if any(name == heavy or name.startswith(heavy + ".") for heavy in HEAVY)
        or name.startswith("aorta.api")
        or (name.startswith("aorta_services.") and not name.startswith("aorta_services.launch"))
    ]


@pytest.mark.parametrize(
    "args",
    [("--help",), ("-h",), ("up", "--help"), ("serve", "--help"), ("--version",)],
)
def test_the_listing_and_launcher_usage_import_nothing_heavy(args: tuple[str, ...]) -> None:
    code, modules = loaded_by(*args)
    assert code in (0, None)
    assert heavy_among(modules) == []
    assert "aorta_services.launch.embedded" not in modules


def test_a_client_command_imports_its_module_only_when_it_runs() -> None:
    _, modules = loaded_by("--help")
    assert not [
        name for name in modules if name.startswith("aorta.cli.") and name != "aorta.cli.lazy"
    ]
    code, modules = loaded_by("operator", "--help")
    assert code == 0
    assert "aorta.cli.operator" in modules
    assert "aorta.cli.audit" not in modules


def test_the_version_command_imports_what_talking_to_the_platform_needs_and_no_more() -> None:
    code, modules = loaded_by("version", "--help")
    assert code == 0
    assert "grpc" in modules and "aorta.cli.platform" in modules
    slow = ("yaml", "structlog", "nats", "aiohttp", "msgspec")
    assert [name for name in modules if name.split(".")[0] in slow] == []
    assert [name for name in modules if name.startswith("aorta_services.")] == [
        "aorta_services.launch",
        "aorta_services.launch.main",
    ]
