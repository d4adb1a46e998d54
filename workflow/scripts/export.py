"""The final checkpoint of a cell (physically smaller in the shared setting)."""

from polyprune.jobs import job
from polyprune.pipeline import export_cell

with job(snakemake) as settings:
    print(export_cell(snakemake.input[0], snakemake.output[0], settings["identity"]))
