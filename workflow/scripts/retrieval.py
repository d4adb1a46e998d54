"""BUCC / Tatoeba scores of a cell's model (no training)."""

import torch

from polyprune.io import write_json
from polyprune.jobs import job
from polyprune.tasks.pipeline import retrieval_cell

with job(snakemake) as settings:
    result = retrieval_cell(
        snakemake.input.model,
        snakemake.input.tokenizer,
        snakemake.input.task,
        snakemake.wildcards.task,
        settings["finetune"],
        settings["identity"],
        device="cuda" if torch.cuda.is_available() else "cpu",
    )
    write_json(snakemake.output[0], {"cell": snakemake.wildcards.cell, **result})
