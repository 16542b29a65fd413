"""Clara's command grammar, `aorta <verb> <noun>`: the verb groups and their nouns.

Nouns are accepted in the singular and the plural (`create pipeline`, `create pipelines`), as
Clara accepted both. `download` takes either payload files (`download -j JOB ...`, Clara's
`download JOB:/path DEST`) or, with the noun `model`, a model.
"""

from __future__ import annotations

import click

from aorta.cli import jobs, models, payloads, pipelines, watch


class NounGroup(click.Group):
    """A verb whose subcommands are nouns, each also reachable by its plural."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name.endswith("s"):
            found = super().get_command(ctx, cmd_name[:-1])
        return found


class DownloadGroup(NounGroup):
    """`download`: payload files by default, `download model ...` for a model."""

    default = "files"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = args[0] if args else None
        is_help = first in ctx.help_option_names
        if not is_help and (first is None or self.get_command(ctx, first) is None):
            args = [self.default, *args]
        return super().parse_args(ctx, args)


def _verb(name: str, help_text: str, *commands: click.Command) -> NounGroup:
    group = NounGroup(name, help=help_text)
    for command in commands:
        group.add_command(command)
    return group


def verb_groups() -> list[click.Command]:
    """The verb groups and the payload commands that stand alone (`upload`, `logs`)."""
    download = DownloadGroup("download", help="Download payload files (the default) or a model.")
    download.add_command(payloads.download_files)
    download.add_command(models.download_model)
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
        _verb(
            "list",
            "List pipelines, jobs, models or payloads.",
            pipelines.list_pipelines,
            jobs.list_jobs,
            models.list_models,
            payloads.list_payloads,
        ),
        _verb(
            "describe",
            "Show one pipeline, job, model or payload.",
            pipelines.describe_pipeline,
            watch.describe_job,
            models.describe_model,
            payloads.describe_payload,
        ),
        _verb(
            "delete",
            "Delete a pipeline, model or payload.",
            pipelines.delete_pipeline,
            models.delete_model,
            payloads.delete_payload,
        ),
        _verb("start", "Start a job.", jobs.start_job),
        _verb("cancel", "Cancel a job.", jobs.cancel_job),
        download,
        payloads.upload_command,
        watch.logs,
    ]
