"""The second study's NER data (PAN-X or the demo world's) for its languages."""

from polyprune.jobs import job
from polyprune.sparse_study import TASK
from polyprune.tasks.pipeline import prepare_task

with job(snakemake) as settings:
    prepare_task(
        TASK,
        settings["tasks"],
        settings.get("world"),
        snakemake.output[0],
        settings["identity"],
        snakemake.params.languages,
    )
