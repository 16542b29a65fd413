"""`run_local`: a scaffolded or Clara-era operator folder runs on the host as a job would."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from aorta.devkit import init_operator, run_local
from aorta.errors import Invalid

# Written against Clara's names; reports its environment and copies its inputs upper-cased.
CLARA_MAIN = textwrap.dedent(
    """
    import json, os
    from pathlib import Path

    import clara

    def execute(driver, payload):
        source = Path(clara_payload.input_entries[0].path)
        target = Path(clara_payload.output_entries[0].path)
        for path in source.iterdir():
            (target / path.name).write_text(path.read_text().upper())
        report = {
            "inputs": [[e.name, e.path] for e in payload.input_entries],
            "outputs": [[e.name, e.path] for e in payload.output_entries],
            "stage": driver.stage_name,
            "job_name": driver.job_name,
            "job_id": str(driver.job_id),
            "nosynclock": os.environ.get("NVIDIA_CLARA_NOSYNCLOCK"),
            "cwd": os.getcwd(),
            "extra": os.environ.get("EXTRA"),
        }
        (target.parent / "report.json").write_text(json.dumps(report))
        return True

    driver = clara.Driver(execute_handler=execute)
    driver.start()
    driver.wait_for_completion()
    """
)


def test_the_scaffold_runs_and_writes_its_results(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "rescaler"
    init_operator(folder, "rescaler")
    assert run_local(folder) == 0
    result = (folder / "local/output/sample.txt").read_text().split()
    assert [float(v) for v in result] == pytest.approx([2 / 8, 0, 3 / 8, 0, 4 / 8, 1, 1 / 8, 5 / 8])
    logged = capfd.readouterr().err
    assert "sample.txt: 8 values through rescaling to 0..1" in logged
    assert "life-cycle completed" in logged


def test_the_scaffold_runs_without_tritonclient_when_no_triton_is_set(tmp_path: Path) -> None:
    folder = tmp_path / "op"
    init_operator(folder, "op")
    # A tritonclient that cannot be imported: the operator must not touch it.
    poisoned = tmp_path / "site" / "tritonclient"
    poisoned.mkdir(parents=True)
    (poisoned / "__init__.py").write_text("raise ImportError('tritonclient must stay lazy')\n")
    assert run_local(folder, env_overrides={"PYTHONPATH": str(tmp_path / "site")}) == 0
    assert (folder / "local/output/sample.txt").is_file()


# Stand-ins for numpy and tritonclient.grpc, just enough for the scaffold's Triton path: the
# "model" multiplies by 10, and each request is recorded as JSON in $FAKE_TRITON_LOG.
FAKE_NUMPY = """
float32 = "float32"

class Array:
    def __init__(self, rows):
        self.rows = [list(row) for row in rows]
        self.shape = (len(self.rows), len(self.rows[0]))

    def reshape(self, size):
        return [value for row in self.rows for value in row]

def asarray(rows, dtype=None):
    return Array(rows)
"""

FAKE_TRITON_GRPC = """
import json, os
from numpy import Array

class InferInput:
    def __init__(self, name, shape, datatype):
        self.name, self.shape, self.datatype = name, shape, datatype

    def set_data_from_numpy(self, array):
        self.array = array

class InferRequestedOutput:
    def __init__(self, name):
        self.name = name

class Result:
    def __init__(self, name, array):
        self.name, self.array = name, array

    def as_numpy(self, name):
        return self.array if name == self.name else None

class InferenceServerClient:
    def __init__(self, url):
        self.url = url

    def infer(self, model, inputs, model_version="", outputs=()):
        (tensor,) = inputs
        with open(os.environ["FAKE_TRITON_LOG"], "a") as log:
            log.write(json.dumps([self.url, model, model_version, tensor.name, tensor.shape,
                                  tensor.datatype, [o.name for o in outputs]]) + "\\n")
        return Result(outputs[0].name, Array([[v * 10 for v in tensor.array.rows[0]]]))
"""


def test_the_scaffold_calls_triton_when_its_address_is_set(tmp_path: Path) -> None:
    folder = tmp_path / "op"
    init_operator(folder, "op")
    (folder / "local/input/sample.txt").write_text("1 2 3\n")
    site = tmp_path / "site"
    (site / "numpy").mkdir(parents=True)
    (site / "numpy/__init__.py").write_text(FAKE_NUMPY)
    (site / "tritonclient/grpc").mkdir(parents=True)
    (site / "tritonclient/__init__.py").write_text("")
    (site / "tritonclient/grpc/__init__.py").write_text(FAKE_TRITON_GRPC)
    log = tmp_path / "triton.log"
    overrides = {
        "PYTHONPATH": str(site),
        "FAKE_TRITON_LOG": str(log),
        "NVIDIA_TRITON_GRPCURI": "localhost:8001",
        "TRITON_MODEL_NAME": "tenfold",
        "TRITON_MODEL_VERSION": "2",
        "TRITON_MODEL_INPUT": "INPUT__0",
        "TRITON_MODEL_OUTPUT": "OUTPUT__0",
    }
    assert run_local(folder, env_overrides=overrides) == 0
    assert (folder / "local/output/sample.txt").read_text().split() == ["10", "20", "30"]
    assert json.loads(log.read_text()) == [
        "localhost:8001",
        "tenfold",
        "2",
        "INPUT__0",
        [1, 3],
        "FP32",
        ["OUTPUT__0"],
    ]
    missing = dict(overrides, TRITON_MODEL_OUTPUT="")
    assert run_local(folder, env_overrides=missing) == 1


def test_a_clara_operator_folder_runs_with_mapped_paths(tmp_path: Path) -> None:
    folder = tmp_path / "upper"
    (folder / "local/input").mkdir(parents=True)
    (folder / "local/input/a.txt").write_text("abc")
    (folder / "main.py").write_text(CLARA_MAIN)
    (folder / "env.list").write_text(
        "NVIDIA_CLARA_INPUTPATHS=payload:/input\nNVIDIA_CLARA_OUTPUTPATHS=upper/out:/output/up\n"
    )
    assert run_local(folder, env_overrides={"EXTRA": "yes"}) == 0
    output = folder / "local/output/up"
    assert (output / "a.txt").read_text() == "ABC"
    report = json.loads((output.parent / "report.json").read_text())
    assert report["inputs"] == [["payload", str((folder / "local/input").resolve())]]
    assert report["outputs"] == [["upper/out", str(output.resolve())]]
    assert (report["stage"], report["job_name"]) == ("upper", "upper-local")
    assert report["nosynclock"] == "1"
    assert report["cwd"] == str(folder.resolve())
    assert report["extra"] == "yes"


def test_input_and_output_folders_can_be_chosen(tmp_path: Path) -> None:
    folder = tmp_path / "op"
    init_operator(folder, "op")
    source, target = tmp_path / "elsewhere-in", tmp_path / "elsewhere-out"
    source.mkdir()
    (source / "numbers.txt").write_text("10 20\n")
    assert run_local(folder, input_dir=source, output_dir=target) == 0
    assert (target / "numbers.txt").read_text().split() == ["0", "1"]
    assert not (folder / "local/output/numbers.txt").exists()


def test_a_failing_operator_returns_its_non_zero_exit_code(tmp_path: Path) -> None:
    folder = tmp_path / "op"
    init_operator(folder, "op")
    (folder / "local/input/sample.txt").write_text("not numbers")
    assert run_local(folder) == 1


def test_run_local_refuses_what_is_not_an_operator_folder(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match=r"no env\.list"):
        run_local(tmp_path)
    init_operator(tmp_path / "op", "op")
    with pytest.raises(Invalid, match="does not exist"):
        run_local(tmp_path / "op", input_dir=tmp_path / "missing")
