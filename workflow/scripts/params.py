"""Parameter counts of a cell's final checkpoint, with the head width of the Appendix B weights."""

from polyprune.bench import model_counts
from polyprune.io import write_json
from polyprune.jobs import job
from polyprune.model import load_model
from polyprune.provenance import provenance

with job(snakemake) as settings:
    counts = model_counts(load_model(snakemake.input[0]))
    prov = provenance(settings["identity"], snakemake.input)
    write_json(
        snakemake.output[0], {"cell": snakemake.wildcards.cell, **counts, "provenance": prov}
    )
