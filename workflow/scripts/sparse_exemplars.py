"""The second study: pruning-identified exemplars per language (sentences whose modal tags over
the sparse seeds differ from the dense seeds')."""

from polyprune.io import atomic_file, read_json
from polyprune.jobs import job
from polyprune.report import markdown, write_csv
from polyprune.sparse_study import exemplar_rows

with job(snakemake) as settings:
    runs = {}
    for path in snakemake.input:
        run = read_json(path, "second-study predictions")
        runs.setdefault((run["regime"], run["variant"]), []).append(run["predictions"])
    rows = exemplar_rows(runs)
    header = list(rows[0])
    table = [[round(v, 4) if isinstance(v, float) else v for v in r.values()] for r in rows]
    write_csv(snakemake.output.csv, header, [list(r.values()) for r in rows])
    with atomic_file(snakemake.output.md) as tmp:
        tmp.write_text(
            f"# Second study: pruning-identified exemplars ({settings['identity']['run']})\n\n"
            "Per regime, sparse model, test set and language: the sentences whose modal tag"
            " sequence over the model's seeds differs from the dense model's (Hooker et al."
            " 2019), and their share.\n\n" + markdown(header, table)
        )
