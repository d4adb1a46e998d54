"""Table 1: every row of the paper's Table 1 on the nine tasks in both modes, with the sparsity
and parameters each reached (CSV and Markdown); Table 3: the same with the Dynamic Sparsification
rows (`ds-...`) at pruning.dynamic.table_sparsity."""

from polyprune.io import atomic_file, read_json
from polyprune.jobs import job
from polyprune.report import (
    cell_sizes,
    chance_row,
    markdown,
    per_language_rows,
    score_table,
    task_scores,
    write_csv,
)

with job(snakemake) as settings:
    scores, spread = task_scores(snakemake.input.results)
    tasks = settings["finetune"]["tasks"]
    params = {p["cell"]: p for p in (read_json(f, "params") for f in snakemake.input.params)}
    sizes = cell_sizes(params, settings["pruning"]["component_weights"])
    header, rows, text = score_table(
        scores, snakemake.params.cells, settings["finetune"]["modes"], tasks, sizes, spread
    )
    write_csv(snakemake.output.csv, header, rows)
    long_header = ["cell", "mode", "task", "language", "metric", "value"]
    write_csv(snakemake.output.languages, long_header, per_language_rows(scores))
    chance = read_json(snakemake.input.chance, "chance levels")
    chance_text = markdown(header[4:-1], [chance_row(chance, tasks)])
    with atomic_file(snakemake.output.md) as tmp:
        tmp.write_text(
            f"# Table {snakemake.params.number} ({settings['identity']['run']})\n\n"
            "Averages over each task's test languages; QA columns are F1 / EM. Sparsity: the"
            " share of the dense encoder's heads and FFN units removed (Appendix B weights),"
            " averaged over a cell's gate sets (range across languages in brackets); Params:"
            " total parameters, averaged likewise. With several fine-tuning seeds (the dense row"
            " of the demo): mean ± standard deviation over seeds.\n\n"
            f"{text}\nChance levels (trivial predictors, see docs/results.md):\n\n{chance_text}"
        )
