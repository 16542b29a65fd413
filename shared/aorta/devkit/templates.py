"""The files `aorta operator init` writes, as `string.Template`s over `$name`, `$image` and
`$folder` (the operator folder's absolute path: where main.py is on the host and in the image).

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

Paths: it reads and writes only through the driver's entries (`payload.input_entries`,
`payload.output_entries`, built from NVIDIA_CLARA_INPUTPATHS and NVIDIA_CLARA_OUTPUTPATHS). In a
container they are the paths the pipeline declares (/input, /output); as a host process, on
`aorta up` without containers or with `aorta operator run-local`, they are folders the platform
made, so a literal "/output" would not exist there.

Run it with `python -u -m aorta.driver.app main.py`, as the pipeline's command does.
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
# Image of the $name operator: aorta operator build (podman or docker build -t $image:latest .).
# Its base is Aorta's Python image for SDK operators (`make images` builds it from a checkout
# of Aorta); BASE names another one that has the `aorta` package.
ARG BASE=localhost/aorta/python-operator:latest
FROM $${BASE}
# main.py sits at the operator folder's own path on the host (aorta operator build passes the
# folder's current path), so the pipeline's one command runs it in a container and as a host
# process alike.
ARG OPERATOR_DIR=$folder
WORKDIR $${OPERATOR_DIR}
COPY main.py ./
ENTRYPOINT ["python", "-u", "-m", "aorta.driver.app", "main.py"]
""")

REQUIREMENTS = Template("""\
# What main.py needs beyond the Python standard library and the `aorta` SDK, which the image's
# base and `aorta up`'s interpreter already have. Calling Triton needs:
# tritonclient[grpc]
# numpy
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
# A pipeline with the $name operator alone. Run it on `aorta up`:
#   aorta run -p def/one-operator-pipeline.yml -f local/input -o results
# Its command runs $folder/main.py, the operator folder's own on the host and the image's copy
# in a container (the Containerfile puts it at the same path). Moved the folder? Pass
# --var OPERATOR_DIR=<new folder> or change the default below (and rebuild the image).
# To call a model, list it under the operator's `models` and pass TRITON_MODEL_NAME,
# TRITON_MODEL_INPUT and TRITON_MODEL_OUTPUT as its `variables`.
""")

SAMPLE_INPUT = "3 1 4 1 5 9 2 6\n"

OUTPUT_GITIGNORE = "*\n!.gitignore\n"

README = Template("""\
# $name

A pipeline operator written with Clara's pipeline driver API (`import clara`), run by Aorta.

- `main.py`: the operator. It reads the text files of numbers in its input folder and writes
  results of the same name to its output folder, through Triton when `NVIDIA_TRITON_GRPCURI` is
  set.
- `def/one-operator-pipeline.yml`: a pipeline with this operator alone.
- `env.list`: the environment of a local run (input entry `payload` at `/input`, output entry
  `$name/output` at `/output`).
- `local/input/`: sample input; `local/output/`: results of local runs.
- `Containerfile`: its image; `requirements.txt`: what it needs beyond the SDK.

## Run it on this machine, without the platform

    aorta operator run-local

It reads `local/input/` and writes `local/output/`, with the environment a job would give it.

## Run it as a job

Start a platform (`aorta up`, in another terminal), then:

    aorta run -p def/one-operator-pipeline.yml -f local/input -o results

`results/$name/output/` holds what it wrote; `aorta list jobs` and `aorta logs JOB` show the
job. The same definition runs whether `aorta up` runs operators as host processes or in
containers: its command, `python -u -m aorta.driver.app $${{ OPERATOR_DIR }}/main.py` with
`OPERATOR_DIR` this folder's path, finds this folder's `main.py` on the host, and the image keeps
a copy at that same path. If you move the folder, pass `--var OPERATOR_DIR=$$PWD` to `aorta run`
(or change the default in the definition) and build the image again. A platform running as root
runs host-process operators as the user `aorta-operator`, which must be able to read this
folder.

## Its image

    aorta operator build

builds it with podman (or docker) as `$image:latest`, the name the definition gives. Its base,
`localhost/aorta/python-operator:latest`, is the Python image with Aorta's SDK that `make
images` builds in a checkout of Aorta. Once the image is there, `aorta up` running operators in
containers runs the same definition in it.

## Paths

Read inputs and write outputs through the entries (`payload.input_entries`,
`payload.output_entries`), never through literal paths: in a container an entry's path is the
one the definition declares (`/input`, `/output`), but as a host process it is a folder the
platform made for the run. A shell operator reads the same from `NVIDIA_CLARA_INPUTPATHS` and
`NVIDIA_CLARA_OUTPUTPATHS` (`name:path` items joined by `;`).
""")
