"""MLM loss per language before and after continued pretraining."""

import torch

from polyprune.io import write_json
from polyprune.jobs import job
from polyprune.pipeline import evaluate_mlm

with job(snakemake) as settings:
    result = evaluate_mlm(
        snakemake.input.before,
        snakemake.input.after,
        snakemake.input.tokenizer,
        snakemake.input.shards,
        settings["data"],
        settings["identity"],
        device="cuda" if torch.cuda.is_available() else "cpu",
    )
    write_json(snakemake.output[0], {"cell": snakemake.wildcards.cell, **result})
