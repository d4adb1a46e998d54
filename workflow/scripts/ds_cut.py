"""A Dynamic Sparsification model cut at one grid sparsity (polyprune.ds.cut)."""

from polyprune.jobs import job
from polyprune.pipeline import cut_dynamic

with job(snakemake) as settings:
    info = cut_dynamic(
        snakemake.input[0], snakemake.output[0], snakemake.params.sparsity, settings["identity"]
    )
    print({name: reached for name, reached in info["gate_sets"].items()})
