"""The second study's base model (e.g. mBERT) and its tokenizer from the hub or a local path."""

from polyprune.jobs import job
from polyprune.sparse_study import convert_base

with job(snakemake) as settings:
    sparse = settings["sparse_finetuning"]
    convert_base(
        sparse["model"],
        sparse.get("revision"),
        snakemake.output.model,
        snakemake.output.tokenizer,
        settings["identity"],
    )
