"""The files `aorta operator init` writes, as `string.Template`s over `$name` and `$image`.

They live in code rather than as package data so that every install (editable or wheel) has
them. `$$` is a literal dollar sign.
"""

from __future__ import annotations

from string import Template

MAIN_PY = Template('''\
"""$name: a pipeline operator for Aorta (and Clara Deploy).

For every text file of numbers in its input folder it writes a file of the same name to its
output folder. With a Triton server (NVIDIA_TRITON_GRPCURI set) the numbers go through the model
named by TRITON_MODEL_NAME (input TRITON_MODEL_INPUT, output TRITON_MODEL_OUTPUT, optional
TRITON_MODEL_VERSION); without one they are scaled to the range 0..1.

Run it with `python -u -m nvidia_clara_pipeline_driver.app main.py`, as its container does.
"""

import logging
import os
from pathlib import Path

import clara

log = logging.getLogger("$name")


def pick(entries, preferred):
    """The entry named `preferred`, else the first one."""
    if not entries:
        raise RuntimeError("the operator environment lists no entries here")
    return next((e for e in entries if e.name == preferred), entries[0])


def read_numbers(path):
    text = path.read_text()
    try:
        return [float(word) for word in text.split()]
    except ValueError:
        raise RuntimeError(f"{path.name} is not a whitespace-separated list of numbers") from None


def rescale(values):
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return [(v - low) / span for v in values]


def infer_with_triton(url, values):
    # Imported here so the operator runs without tritonclient when no Triton is configured.
    import numpy as np
    import tritonclient.grpc as triton

    def setting(key):
        value = os.environ.get(key)
        if not value:
            raise RuntimeError(f"NVIDIA_TRITON_GRPCURI is set but {key} is not")
        return value

    model, input_name, output_name = (
        setting("TRITON_MODEL_NAME"),
        setting("TRITON_MODEL_INPUT"),
        setting("TRITON_MODEL_OUTPUT"),
    )
    data = np.asarray([values], dtype=np.float32)
    tensor = triton.InferInput(input_name, list(data.shape), "FP32")
    tensor.set_data_from_numpy(data)
    client = triton.InferenceServerClient(url=url)
    result = client.infer(
        model,
        [tensor],
        model_version=os.environ.get("TRITON_MODEL_VERSION", ""),
        outputs=[triton.InferRequestedOutput(output_name)],
    )
    return [float(v) for v in result.as_numpy(output_name).reshape(-1)]


def execute(driver, payload):
    source = Path(pick(payload.input_entries, "payload").path)
    target = Path(pick(payload.output_entries, "$name/output").path)
    target.mkdir(parents=True, exist_ok=True)
    triton_url = os.environ.get("NVIDIA_TRITON_GRPCURI")
    how = f"Triton at {triton_url}" if triton_url else "rescaling to 0..1"
    files = sorted(p for p in source.iterdir() if p.is_file())
    for path in files:
        values = read_numbers(path)
        results = infer_with_triton(triton_url, values) if triton_url else rescale(values)
        (target / path.name).write_text(" ".join(f"{v:.6g}" for v in results) + "\\n")
        log.info("%s: %d values through %s", path.name, len(values), how)
    log.info("job %s: %d files written to %s", driver.job_id, len(files), target)
    return True


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    driver = clara.Driver(execute_handler=execute)
    driver.start()
    driver.wait_for_completion()
''')

CONTAINERFILE = Template("""\
# Image of the $name operator. Build: docker build -t $image:latest -f Containerfile .
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY main.py .
ENTRYPOINT ["python", "-u", "-m", "nvidia_clara_pipeline_driver.app", "/app/main.py"]
""")

REQUIREMENTS = Template("""\
aorta==$aorta_version
tritonclient[grpc]
numpy
""")

ENV_LIST = Template("""\
# The environment of a local run of $name, as the platform would give it
# (docker run --env-file env.list, or aorta operator run-local).
# To call a local Triton, add NVIDIA_TRITON_GRPCURI (host:port) and
# TRITON_MODEL_NAME, TRITON_MODEL_INPUT, TRITON_MODEL_OUTPUT.
NVIDIA_CLARA_NOSYNCLOCK=1
NVIDIA_CLARA_STAGENAME=$name
NVIDIA_CLARA_INPUTPATHS=payload:/input
NVIDIA_CLARA_OUTPUTPATHS=$name/output:/output
""")

PIPELINE_HEADER = Template("""\
# A pipeline with the $name operator alone.
# Deploy it with any Clara Platform client, e.g. clara create pipelines -p <this file>.
# To call a model, list it under the operator's `models` and pass TRITON_MODEL_NAME,
# TRITON_MODEL_INPUT and TRITON_MODEL_OUTPUT as its `variables`.
""")

SAMPLE_INPUT = "3 1 4 1 5 9 2 6\n"

OUTPUT_GITIGNORE = "*\n!.gitignore\n"

README = Template("""\
# $name

A pipeline operator written against Clara's pipeline driver API (`import clara`), run by Aorta.

- `main.py`: the operator. It reads the text files of numbers in its input folder and writes
  results of the same name to its output folder, through Triton when `NVIDIA_TRITON_GRPCURI` is
  set.
- `env.list`: the environment of a local run (input entry `payload` at `/input`, output entry
  `$name/output` at `/output`).
- `local/input/`: sample input; `local/output/`: results of local runs.
- `def/one-operator-pipeline.yml`: a pipeline with this operator alone.

Run it on this machine, without the platform:

    aorta operator run-local

Build the image and run it the same way in a container:

    docker build -t $image:latest -f Containerfile .
    docker run --rm --env-file env.list \\
        -v "$$PWD/local/input:/input" -v "$$PWD/local/output:/output" $image:latest

Push the image to the platform's registry, then create the pipeline with any Clara Platform
client, e.g. the `clara` CLI:

    clara create pipelines -p def/one-operator-pipeline.yml
""")
