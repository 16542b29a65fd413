"""Clara's command grammar, `aorta <verb> <noun>`: the verb groups and their nouns, with the
aliases kubectl and Clara users type by habit (`get`, `stop`).

Nouns are accepted in the singular and the plural (`create pipeline`, `create pipelines`), as
Clara accepted both; a mistyped noun gets a suggestion. `download` takes either payload files
(`download -j JOB ...`, Clara's `download JOB:/path DEST`) or, with a noun, a job's or a
payload's files or a model. `get` is kubectl's: `get jobs` lists, `get job ID` describes.
"""

from __future__ import annotations

import difflib

import click

from aorta.cli import joblist, jobs, logs, models, payloads, pipelines, services, watch


def suggestion(word: str, choices: list[str]) -> str:
    """ " Did you mean 'X'?" for the choice closest to a mistyped `word`, or ""."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


class NounGroup(click.Group):
    """A verb whose subcommands are nouns, each also reachable by its plural."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name.endswith("s"):
            found = super().get_command(ctx, cmd_name[:-1])
        return found

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            nouns = [n for noun in self.list_commands(ctx) for n in (noun, f"{noun}s")]
            ctx.fail(f"No such noun {name!r} for {self.name}.{suggestion(name, nouns)}")
        return super().resolve_command(ctx, args)


class DownloadGroup(NounGroup):
    """`download`: payload files by default; `download job|payload|model ...` by noun."""

    default = "files"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = args[0] if args else None
        is_help = first in ctx.help_option_names
        if not is_help and (first is None or self.get_command(ctx, first) is None):
            args = [self.default, *args]
        return super().parse_args(ctx, args)


class GetGroup(NounGroup):
    """kubectl's `get`: `get jobs` is `list jobs`; with an id or name (`get job ID`, or
    `get job -j ID`) it is `describe job ID`."""

    def __init__(self, listing: click.Group, describing: click.Group) -> None:
        super().__init__(
            "get",
            help="List pipelines, jobs, models or payloads; with an ID, show one (kubectl's get).",
        )
        self.describing = describing
        for name, command in listing.commands.items():
            self.add_command(command, name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        describe = self.describing.get_command(ctx, args[0]) if args else None
        if describe is not None and _names_one(describe, rest):
            return name, describe, rest
        return name, command, rest


def _names_one(describe: click.Command, rest: list[str]) -> bool:
    """Whether `rest` names one thing: a first word that is not an option, or an option that
    only `describe` takes to name it (such as `-j`)."""
    if rest and not rest[0].startswith("-"):
        return True
    naming = {
        flag
        for param in describe.params
        if isinstance(param, click.Option) and (param.name or "").endswith("_flag")
        for flag in param.opts
    }
    return any(word.split("=", 1)[0] in naming for word in rest)


def _verb(name: str, help_text: str, *commands: click.Command) -> NounGroup:
    group = NounGroup(name, help=help_text)
    for command in commands:
        group.add_command(command)
    return group


def verb_groups() -> list[click.Command]:
    """The verb groups and the payload commands that stand alone (`upload`, `logs`)."""
    download = DownloadGroup(
        "download", help="Download payload files (the default), a job's or payload's, or a model."
    )
    download.add_command(payloads.download_files)
    download.add_command(payloads.download_job)
    download.add_command(payloads.download_payload)
    download.add_command(models.download_model)
    listing = _verb(
        "list",
        "List pipelines, jobs, models, payloads or pipeline services.",
        pipelines.list_pipelines,
        joblist.list_jobs,
        models.list_models,
        payloads.list_payloads,
        services.list_services,
    )
    describing = _verb(
        "describe",
        "Show one pipeline, job, model or payload.",
        pipelines.describe_pipeline,
        watch.describe_job,
        models.describe_model,
        payloads.describe_payload,
    )
    return [
        _verb(
            "create",
            "Create a pipeline, job, model or payload.",
            pipelines.create_pipeline,
            jobs.create_job,
            models.create_model,
            payloads.create_payload,
        ),
        _verb("update", "Update a pipeline's definition.", pipelines.update_pipeline),
        listing,
        describing,
        GetGroup(listing, describing),
        _verb(
            "delete",
            "Delete a pipeline, job, model or payload.",
            pipelines.delete_pipeline,
            jobs.delete_job,
            models.delete_model,
            payloads.delete_payload,
        ),
        _verb("start", "Start a job.", jobs.start_job),
        _verb("cancel", "Cancel a job.", jobs.cancel_job),
        _verb("stop", "Cancel a job (Clara's name for cancel).", jobs.cancel_job),
        download,
        payloads.upload_command,
        logs.logs,
    ]
