"""Pick the grid point with the best validation score; report its test scores."""

from polyprune.io import write_json
from polyprune.jobs import job
from polyprune.tasks.pipeline import select_point

with job(snakemake) as settings:
    result = select_point(
        snakemake.input,
        settings["finetune"]["selection"][snakemake.wildcards.mode],
        settings["source_language"],
        settings["identity"],
    )
    w = snakemake.wildcards
    write_json(snakemake.output[0], {"cell": w.cell, "seed": int(w.seed), **result})
