"""`aorta operator init|run-local|build`: the operator development kit on the command line."""

from __future__ import annotations

import os
from pathlib import Path

import click

from aorta.cli.session import Session, with_session
from aorta.devkit import init_operator, run_local
from aorta.devkit.image_build import BUILDERS, base_missing, build, plan_build

_operator_folder = click.option(
    "--dir",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="The operator folder.",
)
"""The `--dir` of the commands that take an existing operator folder."""


@click.group("operator")
def operator() -> None:
    """Write and try pipeline operators without the platform."""


@operator.command("init")
@click.argument("name")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write it [default: ./NAME].",
)
@with_session(remote=False, json_output=False, quiet=False)
def init(session: Session, name: str, folder: Path | None) -> None:
    """Scaffold a new operator folder that runs at once."""
    target = folder or Path(name)
    written = init_operator(target, name)
    session.output.line(f"Operator {name} written to {target}:")
    for path in written:
        session.output.line(f"  {path.relative_to(target)}")
    session.output.line(f"Try it: aorta operator run-local --dir {target}")
    session.output.line(
        f"As a job on `aorta up`: cd {target} && "
        "aorta run -p def/one-operator-pipeline.yml -f local/input -o results"
    )


@operator.command("run-local")
@_operator_folder
@click.option(
    "--input",
    "input_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Input folder [default: the folder's local/input].",
)
@click.option(
    "--output",
    "output_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder [default: the folder's local/output].",
)
@with_session(remote=False, json_output=False, quiet=False)
def run_local_command(
    session: Session, folder: Path, input_dir: Path | None, output_dir: Path | None
) -> int:
    """Run an operator folder on this machine as a job would run it; exits with its code."""
    code = run_local(folder, input_dir=input_dir, output_dir=output_dir)
    # A signal death (-N from subprocess) exits 128+N, as a shell reports it.
    return code if code >= 0 else 128 - code


@operator.command("build")
@_operator_folder
@click.option(
    "-t",
    "--tag",
    "image",
    metavar="IMAGE[:TAG]",
    help="The image's name [default: the one def/one-operator-pipeline.yml gives].",
)
@click.option(
    "--builder",
    type=click.Choice(BUILDERS),
    help="The command that builds it [default: podman, else docker].",
)
@with_session(remote=False, json_output=False, quiet=False)
def build_command(session: Session, folder: Path, image: str | None, builder: str | None) -> int:
    """Build the operator's image from its Containerfile, named as its definition says; exits
    with the builder's code."""
    environ = dict(os.environ)
    plan = plan_build(folder, environ, image=image, builder=builder)
    if base_missing(plan, environ):
        session.output.error(
            f"the base image {plan.base} is not in {Path(plan.command[0]).name}'s image store: "
            "`make images` in a checkout of Aorta builds Aorta's SDK image, or set the "
            "Containerfile's `ARG BASE` to an image that has the `aorta` package"
        )
        return 1
    session.output.line("$ " + " ".join(plan.command))
    code = build(plan, environ)
    if code == 0:
        session.output.line(
            f"Built {plan.image}: `aorta up` running operators in containers finds it by the "
            "name the definition gives."
        )
    return code
