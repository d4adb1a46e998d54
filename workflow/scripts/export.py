"""The final checkpoint of a cell (physically smaller in the shared setting), and its parameter
counts."""

from polyprune.jobs import job
from polyprune.pipeline import export_cell

with job(snakemake) as settings:
    print(
        export_cell(
            snakemake.input[0],
            snakemake.output.model,
            snakemake.output.params,
            snakemake.wildcards.cell,
            settings["identity"],
        )
    )
