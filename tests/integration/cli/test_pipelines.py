"""Pipeline commands: chunked multi-file definitions, list/describe/update/delete, JSON."""

from __future__ import annotations

import json
from pathlib import Path

from aorta.cli.files import CHUNK_SIZE
from tests.integration.cli.cli_support import ROOT_PIPELINE, Aorta, Samples
from tests.integration.cli.fake_platform import FakePlatform


def test_a_large_definition_is_sent_in_64_kib_chunks_under_one_path(
    aorta: Aorta, platform: FakePlatform, samples: Samples
) -> None:
    padding = "".join(f"# line {n}: données padding the file past one chunk\n" for n in range(3000))
    big = ROOT_PIPELINE + padding
    samples.definition.write_text(big)
    created = aorta("create", "pipeline", "-p", samples.definition, "--json")
    assert created.exit_code == 0, created.output
    pipeline_id = json.loads(created.stdout)["pipeline_id"]
    assert platform.pipelines[pipeline_id].files["pipeline.yml"] == big
    root_messages = [n for path, n in platform.pipeline_messages if path == "pipeline.yml"]
    assert len(root_messages) == -(-len(big.encode()) // CHUNK_SIZE) > 1
    paths = [path for path, _ in platform.pipeline_messages]
    assert paths == ["pipeline.yml"] * len(root_messages) + ["ops/segment.yml", "ops/triton.yml"]


def test_list_describe_update_and_delete(
    aorta: Aorta, platform: FakePlatform, samples: Samples, tmp_path: Path
) -> None:
    pipeline_id = aorta("create", "pipeline", "-p", samples.definition, "-q").stdout.strip()
    listed = aorta("list", "pipelines")
    assert listed.stdout.splitlines() == [
        "PIPELINE ID                       NAME",
        f"{pipeline_id}  seg-demo",
    ]
    assert json.loads(aorta("list", "pipelines", "--json").stdout) == [
        {"pipeline_id": pipeline_id, "name": "seg-demo", "metadata": {}}
    ]

    described = aorta("describe", "pipeline", "-p", pipeline_id)
    assert described.exit_code == 0
    assert described.stdout.startswith(
        f"name: seg-demo\nid: {pipeline_id}\noperators\n"
        "└── reader\n    └── segment\n        └── writer\ndefinition: pipeline.yml\n"
    )
    assert "definition: ops/triton.yml\nname: triton" in described.stdout
    document = json.loads(aorta("describe", "pipeline", "-p", pipeline_id, "--json").stdout)
    assert document["dag"] == {
        "operators": ["reader", "segment", "writer"],
        "edges": [["reader", "segment"], ["segment", "writer"]],
    }
    assert [d["path"] for d in document["definition"]] == [
        "pipeline.yml",
        "ops/segment.yml",
        "ops/triton.yml",
    ]

    single = tmp_path / "single.yml"
    single.write_text("name: seg-demo\noperators:\n- name: only\n  container: {image: x}\n")
    updated = aorta("update", "pipeline", "-p", pipeline_id, "-f", single)
    assert updated.exit_code == 0, updated.output
    assert platform.pipelines[pipeline_id].files == {"single.yml": single.read_text()}

    assert aorta("delete", "pipeline", "-p", pipeline_id, "-q").stdout.strip() == pipeline_id
    assert pipeline_id not in platform.pipelines
    assert aorta("delete", "pipeline", "-p", pipeline_id).exit_code == 3


def test_a_definition_the_server_refuses_exits_1_with_its_messages(
    aorta: Aorta, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("name: x\noperators:\n- container: {image: x}\n")
    created = aorta("create", "pipeline", "-p", broken)
    assert created.exit_code == 1
    assert "creating a pipeline from" in created.stderr
    assert "PIPELINE_LOAD_ERROR -4353" in created.stderr
    assert created.stdout == ""
