"""`aorta create|list|describe|download|delete model`.

Models are named on the command line by id, by a unique id prefix (as Clara's CLI allowed) or
by name; the Models service has no call for one model, so lookups read `ListModels`.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Group
from rich.text import Text

from aorta.api import common_pb2, models_pb2
from aorta.cli.connection import UNARY_TIMEOUT, check, checked_replies, request_header
from aorta.cli.failures import CliFailure, NotFoundFailure, UsageFailure
from aorta.cli.files import read_chunks
from aorta.cli.lookup import named
from aorta.cli.model_archive import MODEL_TYPES, inspect_folder, zip_chunks
from aorta.cli.output import key_values, table
from aorta.cli.params import KEY_VALUE
from aorta.cli.progress import Transfer
from aorta.cli.session import Session, with_session

_TYPE_VALUES = {
    "tensorflow": models_pb2.MODEL_TYPE_TENSOR_FLOW,
    "tensorrt": models_pb2.MODEL_TYPE_TENSOR_RT,
    "pytorch": models_pb2.MODEL_TYPE_PY_TORCH,
    "unknown": models_pb2.MODEL_TYPE_UNKNOWN,
}
_TYPE_NAMES = {value: name for name, value in _TYPE_VALUES.items()}


def document(model: models_pb2.ModelDetails) -> dict[str, Any]:
    return {
        "model_id": model.model_id.value,
        "name": model.name,
        "type": _TYPE_NAMES.get(model.type, "unknown"),
        "metadata": dict(model.metadata),
    }


def list_all(session: Session) -> list[models_pb2.ModelDetails]:
    """Every model, gathered over the `ListModels` stream."""
    request = models_pb2.ModelsListModelsRequest(header=request_header())
    found: list[models_pb2.ModelDetails] = []
    for response in checked_replies(session.platform.models.ListModels(request), "listing models"):
        found.extend(m for m in response.models if m.model_id.value)
    return found


def resolve(session: Session, given: str) -> models_pb2.ModelDetails:
    """The one model whose id is `given`, whose id starts with it, or whose name it is."""
    wanted = given.strip().lower().replace("-", "")
    models = list_all(session)
    rules: list[Callable[[models_pb2.ModelDetails], bool]] = [
        lambda m: m.model_id.value == wanted,
        lambda m: m.model_id.value.startswith(wanted),
        lambda m: m.name == given,
    ]
    for rule in rules:
        chosen = [m for m in models if wanted and rule(m)]
        if len(chosen) == 1:
            return chosen[0]
        if len(chosen) > 1:
            names = ", ".join(f"{m.model_id.value} ({m.name})" for m in chosen)
            raise UsageFailure(f"{given!r} names several models: {names}")
    raise NotFoundFailure(f"no model has the id, id prefix or name {given!r}")


def _upload_requests(
    details: models_pb2.ModelDetails, chunks: Iterator[bytes]
) -> Iterator[models_pb2.ModelsUploadModelRequest]:
    yield models_pb2.ModelsUploadModelRequest(header=request_header(), details=details)
    for chunk in chunks:
        yield models_pb2.ModelsUploadModelRequest(data=chunk)


@click.command("model")
@click.option(
    "-f",
    "-p",
    "--path",
    "source",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="A Triton model folder (zipped on the fly) or a .zip archive of one.",
)
@click.option("-n", "--name", help="Model name [default: from config.pbtxt or the folder].")
@click.option(
    "-t",
    "--type",
    "model_type",
    type=click.Choice(MODEL_TYPES),
    help="Model type [default: from config.pbtxt's platform, else unknown].",
)
@click.option("--metadata", type=KEY_VALUE, multiple=True, help="key=value (repeatable).")
@click.option("--raw", is_flag=True, help="Skip the Triton layout checks.")
@with_session()
def create_model(
    session: Session,
    source: Path,
    name: str | None,
    model_type: str | None,
    metadata: tuple[tuple[str, str], ...],
    raw: bool,
) -> None:
    """Upload a model to the model repository; prints MODEL_ID:<id>."""
    if source.is_dir():
        model = inspect_folder(source, name, raw=raw)
        chosen_name, chosen_type, total = model.name, model_type or model.model_type, model.size
    else:
        if not raw and not zipfile.is_zipfile(source):
            raise UsageFailure(f"{source} is not a .zip archive (or give a model folder)")
        model = None
        chosen_name = name or source.name.removesuffix(".zip")
        chosen_type, total = model_type or "unknown", source.stat().st_size
    details = models_pb2.ModelDetails(name=chosen_name, type=_TYPE_VALUES[chosen_type])
    for key, value in metadata:
        details.metadata[key] = value
    with Transfer(session.output, "uploading", total) as transfer:
        chunks = (
            zip_chunks(model, transfer.advance)
            if model is not None
            else _counted(read_chunks(source), source.name, transfer)
        )
        response = session.platform.models.UploadModel(_upload_requests(details, chunks))
    check(response, f"uploading model {chosen_name!r}")
    model_id = response.details.model_id.value
    session.output.note(f"Uploaded {chosen_name} ({chosen_type}): {transfer.summary()}.")
    session.output.emit(
        human=f"MODEL_ID:{model_id}",
        document=document(response.details) | {"model_id": model_id, "name": chosen_name},
        ids=[model_id],
        kind="model",
    )


def _counted(chunks: Iterator[bytes], name: str, transfer: Transfer) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk
        transfer.advance(name, len(chunk))


@click.command("model")
@with_session()
def list_models(session: Session) -> None:
    """List the models in the repository."""
    found = [document(m) for m in list_all(session)]
    rows = [
        (
            m["model_id"],
            m["name"],
            m["type"],
            ", ".join(f"{k}={v}" for k, v in m["metadata"].items()),
        )
        for m in found
    ]
    session.output.emit(
        human=table(["MODEL ID", "NAME", "TYPE", "METADATA"], rows),
        document=found,
        ids=[m["model_id"] for m in found],
        kind="model",
    )


@click.command("model")
@named("model", "-m", "--model", dest="model")
@with_session(quiet=False)
def describe_model(session: Session, model: str) -> None:
    """Show a model: id, name, type and metadata."""
    found = document(resolve(session, model))
    pairs = [("name", found["name"]), ("id", found["model_id"]), ("type", found["type"])]
    pairs += [(f"metadata.{key}", value) for key, value in sorted(found["metadata"].items())]
    session.output.emit(
        human=key_values(pairs), document=found, ids=[found["model_id"]], kind="model"
    )


@click.command("model")
@click.option("-m", "--model", "flagged", help="Model id, unique id prefix, or name.")
@click.argument("words", nargs=-1, required=True, metavar="[MODEL] DEST")
@with_session()
def download_model(session: Session, flagged: str | None, words: tuple[str, ...]) -> None:
    """Download a model as a zip archive (into DEST, or DEST/<name>.zip for a folder):
    `download model MODEL DEST` or `download model -m MODEL DEST`."""
    if len(words) != (1 if flagged else 2):
        raise click.UsageError("give the model and a DEST: MODEL DEST, or -m MODEL DEST")
    model, dest = (flagged, Path(words[0])) if flagged else (words[0], Path(words[1]))
    chosen = resolve(session, model)
    target = dest / f"{chosen.name}.zip" if dest.is_dir() else dest
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    request = models_pb2.ModelsDownloadModelRequest(
        header=request_header(), model_id=common_pb2.Identifier(value=chosen.model_id.value)
    )
    try:
        with Transfer(session.output, "downloading", None) as transfer, partial.open("wb") as out:
            for response in checked_replies(
                session.platform.models.DownloadModel(request),
                f"downloading model {chosen.model_id.value}",
            ):
                out.write(response.data)
                transfer.advance(target.name, len(response.data))
        if transfer.done == 0:
            raise CliFailure(f"the platform sent no bytes for model {chosen.model_id.value}")
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    session.output.note(f"Downloaded {chosen.name}: {transfer.summary()}.")
    session.output.emit(
        human=str(target),
        document=document(chosen) | {"path": str(target), "size": transfer.done},
        ids=[chosen.model_id.value],
        kind="model",
    )


@click.command("model")
@click.option("-m", "--model", "flagged", multiple=True, help="Model id, id prefix or name.")
@click.argument("models", nargs=-1)
@with_session()
def delete_model(session: Session, flagged: Sequence[str], models: Sequence[str]) -> None:
    """Delete models: `delete model -m ID` or `delete models ID [ID ...]`."""
    given = [*flagged, *models]
    if not given:
        raise click.UsageError("name a model: -m ID (or ids as arguments)")
    deleted = []
    for entry in given:
        chosen = resolve(session, entry)
        request = models_pb2.ModelsDeleteModelRequest(
            header=request_header(), model_id=common_pb2.Identifier(value=chosen.model_id.value)
        )
        response = session.platform.models.DeleteModel(request, timeout=UNARY_TIMEOUT)
        check(response, f"deleting model {chosen.model_id.value}")
        deleted.append(document(chosen))
    session.output.emit(
        human=Group(*(Text(f"Model {m['model_id']} ({m['name']}) deleted.") for m in deleted)),
        document=deleted,
        ids=[m["model_id"] for m in deleted],
        kind="model",
    )
