"""Gradient pruning of one cell: importance scores -> gates -> gated model."""

from polyprune.jobs import job
from polyprune.pipeline import make_cell, write_cell

with job(snakemake) as settings:
    scores = {name: snakemake.input[name] for name in snakemake.params.gate_sets}
    model, info = make_cell(
        snakemake.input.base,
        snakemake.wildcards.cell,
        scores,
        settings["pruning"],
        settings["importance"],
        settings["identity"],
    )
    write_cell(model, info, snakemake.output.model, snakemake.output.gates)
