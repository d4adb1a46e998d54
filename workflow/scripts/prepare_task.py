"""A task's normalised records (docs/tasks.md) from the demo world, the hub or local files."""

from polyprune.jobs import job
from polyprune.tasks.pipeline import prepare_task

with job(snakemake) as settings:
    prepare_task(
        snakemake.wildcards.task,
        settings["tasks"],
        settings.get("world"),
        snakemake.output[0],
        settings["identity"],
        snakemake.params.languages,
    )
