"""The second study: pruning-identified exemplars per language (sentences whose modal tags over
the sparse seeds differ from the dense seeds')."""

from polyprune.io import read_json
from polyprune.jobs import job
from polyprune.report import write_records_table
from polyprune.sparse_study import exemplar_rows

with job(snakemake) as settings:
    runs = {}
    for path in snakemake.input:
        run = read_json(path, "second-study predictions")
        runs.setdefault((run["regime"], run["variant"]), []).append(run["predictions"])
    write_records_table(
        exemplar_rows(runs),
        snakemake.output.csv,
        snakemake.output.md,
        f"Second study: pruning-identified exemplars ({settings['identity']['run']})",
        "Per regime, sparse model, test set and language: the sentences whose modal tag sequence"
        " over the model's seeds differs from the dense model's (Hooker et al. 2019), and their"
        " share.",
    )
