"""NVIDIA's own Python client (`nvidia-clara-client` 0.8.1.7), unchanged, against the gateway and
the pipelines service on a real nats-server: every PipelinesClient method, and the errors it
raises for broken definitions.

The client runs in its own virtualenv and process (`run_clara_python`); the snippet prints one
JSON document of what it saw, which the test asserts on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aorta.bus.nats import NatsBus
from aorta.runtime.service import service_context
from aorta.settings import Settings
from aorta.testing.clara_client import run_clara_python
from aorta.testing.nats import async_nats_server
from aorta_services.gateway import app as gateway_app
from aorta_services.pipelines import app as pipelines_app

TWO_OPERATORS = """\
api-version: 0.4.0
name: two-operators
orchestrator: Clara
operators:
- name: operator1
  container:
    image: example/operator1
    tag: latest
  input:
  - path: /pipeline_input
  output:
  - name: segmentation-output
    path: /output
- name: operator2
  container:
    image: example/operator2
    tag: latest
  input:
  - from: operator1
    name: segmentation-output
    path: /input
  output:
  - name: final-output
    path: /output
"""

CYCLE = TWO_OPERATORS.replace(
    "  - path: /pipeline_input", "  - from: operator2\n    name: final-output\n    path: /in"
)
DANGLING = TWO_OPERATORS.replace("from: operator1", "from: no-such-operator")
WARNED = TWO_OPERATORS.replace("orchestrator: Clara", "orchestrator: Clara\nowner: imaging")
TYPO = TWO_OPERATORS.replace("\noperators:", "\nopertors:")
IMPORTING = (
    "api-version: 0.4.0\nname: imported\noperators:\n"
    "- import: {path: ops/reader.yml}\n- import: {path: ops/writer.yml}\n"
)
READER = "name: reader\ncontainer: {image: r}\noutput: [{path: /out}]\n"
WRITER = "name: writer\ncontainer: {image: w}\ninput: [{from: reader, path: /in}]\n"

SNIPPET = """
import json, sys
import grpc
import nvidia_clara.pipeline_types as types
from nvidia_clara.grpc import common_pb2, pipelines_pb2, pipelines_pb2_grpc
from nvidia_clara.pipelines_client import PipelinesClient

target, texts = sys.argv[1], json.loads(sys.argv[2])
client = PipelinesClient(target)
seen = {}

def failure(call):
    try:
        call()
    except Exception as error:
        return str(error)
    return None

def tree(nodes):
    return [[node.name, tree(node.next)] for node in nodes]

pipeline_id = client.create_pipeline(
    definition=[types.PipelineDefinition(name="two.yml", content=texts["two"])]
)
seen["id"] = pipeline_id.value
seen["list"] = [[i.pipeline_id.value, i.name, dict(i.metadata)] for i in client.list_pipelines()]
found = client.pipeline_details(pipeline_id=pipeline_id)
seen["details"] = {
    "id": found.pipeline_id.value,
    "name": found.name,
    "files": [[d.name, d.content.path, d.content.content] for d in found.definition],
}
with grpc.insecure_channel(target) as channel:
    request = pipelines_pb2.PipelinesDetailsRequest(
        pipeline_id=common_pb2.Identifier(value=pipeline_id.value)
    )
    seen["dag"] = tree(list(pipelines_pb2_grpc.PipelinesStub(channel).Details(request))[0].dag)

client.update_pipeline(
    pipeline_id=pipeline_id,
    definition=[types.PipelineDefinition(name="v2.yml", content=texts["renamed"])],
)
updated = client.pipeline_details(pipeline_id=pipeline_id)
seen["updated"] = [updated.name, [d.content.path for d in updated.definition]]

seen["added"] = dict(client.add_metadata(pipeline_id, {"study": "ct-1", "Site": "north"}))
seen["duplicate"] = failure(lambda: client.add_metadata(pipeline_id, {"SITE": "south"}))
seen["after_remove_metadata"] = dict(client.remove_metadata(pipeline_id, ["STUDY"]))
seen["metadata_in_details"] = dict(client.pipeline_details(pipeline_id=pipeline_id).metadata)

multi = client.create_pipeline(
    definition=[
        types.PipelineDefinition(name="main.yml", content=texts["importing"]),
        types.PipelineDefinition(name="ops/reader.yml", content=texts["reader"]),
        types.PipelineDefinition(name="ops/writer.yml", content=texts["writer"]),
    ],
    metadata={"team": "imaging"},
)
multi_details = client.pipeline_details(pipeline_id=multi)
seen["multi"] = {
    "name": multi_details.name,
    "paths": [d.content.path for d in multi_details.definition],
    "metadata": dict(multi_details.metadata),
}
chosen = types.PipelineId("0123456789abcdef0123456789abcdef")
seen["chosen"] = client.create_pipeline(
    definition=[types.PipelineDefinition(name="c.yml", content=texts["two"])], pipeline_id=chosen
).value

client.remove_pipeline(pipeline_id=pipeline_id)
seen["after_remove"] = sorted(i.pipeline_id.value for i in client.list_pipelines())
seen["details_removed"] = failure(lambda: client.pipeline_details(pipeline_id=pipeline_id))
seen["remove_again"] = failure(lambda: client.remove_pipeline(pipeline_id=pipeline_id))

warned = client.create_pipeline(
    definition=[types.PipelineDefinition(name="warned.yml", content=texts["warned"])]
)
seen["warned"] = warned.value
for name in ("cycle", "dangling", "typo"):
    seen[name] = failure(
        lambda: client.create_pipeline(
            definition=[types.PipelineDefinition(name=name + ".yml", content=texts[name])]
        )
    )
client.close()
print(json.dumps(seen))
"""


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[str]:
    """`host:port` of a gateway in front of the pipelines service, on a real nats-server."""
    async with async_nats_server(tmp_path / "nats") as server:
        settings = Settings.from_env(
            {
                "AORTA_DATA_DIR": str(tmp_path),
                "AORTA_NATS_URL": server.url,
                "AORTA_RPC_TIMEOUT": "10",
            }
        )
        bus = await NatsBus.connect(server.url, name="aorta-e2e", default_timeout=10.0)
        async with service_context(settings, bus) as context:
            pipelines = await pipelines_app.start(context)
            gateway = await gateway_app.start(context, address="127.0.0.1:0")
            try:
                yield f"127.0.0.1:{gateway.port}"
            finally:
                await gateway.stop(1.0)
                await pipelines.stop(1.0)
                await bus.close()


async def clara(target: str) -> dict[str, Any]:
    texts = {
        "two": TWO_OPERATORS,
        "renamed": TWO_OPERATORS.replace("name: two-operators", "name: renamed"),
        "importing": IMPORTING,
        "reader": READER,
        "writer": WRITER,
        "cycle": CYCLE,
        "dangling": DANGLING,
        "warned": WARNED,
        "typo": TYPO,
    }
    # The client blocks; it runs in a thread so this loop keeps serving it.
    result = await asyncio.to_thread(
        run_clara_python, SNIPPET, args=[target, json.dumps(texts)], timeout=90
    )
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(result.stdout)
    return seen


async def test_nvidias_pipelines_client_end_to_end(target: str) -> None:
    seen = await clara(target)
    pipeline_id = seen["id"]
    assert len(pipeline_id) == 32 and int(pipeline_id, 16) >= 0
    assert seen["list"] == [[pipeline_id, "two-operators", {}]]
    assert seen["details"] == {
        "id": pipeline_id,
        "name": "two-operators",
        "files": [["two-operators", "two.yml", TWO_OPERATORS]],
    }
    assert seen["dag"] == [["operator1", [["operator2", []]]]]
    assert seen["updated"] == ["renamed", ["v2.yml"]]

    assert seen["added"] == {"study": "ct-1", "Site": "north"}
    assert "'SITE' already exists" in seen["duplicate"]
    assert seen["after_remove_metadata"] == {"Site": "north"}
    assert seen["metadata_in_details"] == {"Site": "north"}

    assert seen["multi"] == {
        "name": "imported",
        "paths": ["main.yml", "ops/reader.yml", "ops/writer.yml"],
        "metadata": {"team": "imaging"},
    }
    assert seen["chosen"] == "0123456789abcdef0123456789abcdef"

    assert pipeline_id not in seen["after_remove"] and len(seen["after_remove"]) == 2
    assert f"no pipeline has id {pipeline_id}" in seen["details_removed"]
    assert f"no pipeline has id {pipeline_id}" in seen["remove_again"]

    assert "cycle.yml:" in seen["cycle"]
    assert "the operators form a cycle: operator1 -> operator2 -> operator1" in seen["cycle"]
    assert "dangling.yml:" in seen["dangling"]
    assert "'no-such-operator'" in seen["dangling"]
    assert "not an operator of this pipeline" in seen["dangling"]

    # A warning (in the success header's messages) does not trouble NVIDIA's client; a typo of a
    # key is refused with a message naming it, its position and the key it may mean.
    assert len(seen["warned"]) == 32 and seen["warned"] != pipeline_id
    typo = seen["typo"]
    assert "typo.yml:4:1: error: unknown key `opertors` in the pipeline; did you mean " in typo
