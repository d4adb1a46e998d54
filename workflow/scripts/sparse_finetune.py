"""One NER model of the second study: fine-tuned in a regime, pruned on the schedule to its
variant's sparsity, with one seed."""

import torch

from polyprune.jobs import job
from polyprune.sparse_study import finetune_sparse

with job(snakemake) as settings:
    w = snakemake.wildcards
    finetune_sparse(
        snakemake.input.model,
        snakemake.input.tokenizer,
        snakemake.input.task,
        w.regime,
        w.variant,
        int(w.seed),
        settings["sparse_finetuning"],
        snakemake.output[0],
        settings["identity"],
        device="cuda" if torch.cuda.is_available() else "cpu",
    )
