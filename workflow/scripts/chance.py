"""Chance levels of every evaluation task, per language."""

from polyprune.io import write_json
from polyprune.jobs import job
from polyprune.provenance import provenance
from polyprune.report import chance_scores

with job(snakemake) as settings:
    tasks = snakemake.params.tasks
    chance = {
        task: chance_scores(d, settings["identity"]["seed"])
        for task, d in zip(tasks, snakemake.input)
    }
    write_json(snakemake.output[0], {**chance, "provenance": provenance(settings["identity"])})
