"""A second-study model's F1 per language on every test set, and its predicted tags."""

import torch

from polyprune.io import write_json
from polyprune.jobs import job
from polyprune.model import read_checkpoint_meta
from polyprune.provenance import provenance
from polyprune.sparse_study import evaluate_sparse

with job(snakemake) as settings:
    scores, predictions = evaluate_sparse(
        snakemake.input.model,
        snakemake.input.tokenizer,
        snakemake.input.tests,
        snakemake.params.test_sets,
        settings["sparse_finetuning"]["eval_batch_size"],
        device="cuda" if torch.cuda.is_available() else "cpu",
    )
    info = read_checkpoint_meta(snakemake.input.model)["ner"]
    inputs = [snakemake.input.model, snakemake.input.tests]
    origin = provenance(settings["identity"], inputs)
    write_json(snakemake.output.predictions, {**info, "predictions": predictions})
    write_json(snakemake.output.scores, {**info, "test": scores, "provenance": origin})
