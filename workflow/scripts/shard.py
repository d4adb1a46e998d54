"""Tokenize and pack one language into eval / importance / train shards."""

from polyprune.data import shard_language
from polyprune.jobs import job

with job(snakemake) as settings:
    shard_language(
        snakemake.input.tokenizer,
        snakemake.params.location,
        snakemake.output[0],
        snakemake.wildcards.lang,
        settings["data"],
        size=snakemake.params.size,
        max_train=snakemake.params.max_train,
        identity=settings["identity"],
    )
