"""Fine-tune a cell's model at one grid point and score it."""

import torch

from polyprune.io import write_json
from polyprune.jobs import job
from polyprune.tasks.pipeline import finetune_point

with job(snakemake) as settings:
    w = snakemake.wildcards
    result = finetune_point(
        snakemake.input.model,
        snakemake.input.tokenizer,
        dict(zip(snakemake.params.tasks, snakemake.input.tasks, strict=True)),
        w.train_set,
        w.mode,
        float(w.lr),
        int(w.epochs),
        int(w.seed),
        settings["finetune"],
        settings["identity"],
        device="cuda" if torch.cuda.is_available() else "cpu",
    )
    write_json(snakemake.output[0], {"cell": w.cell, **result})
