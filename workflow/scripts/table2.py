"""Table 2: the improved-L0 ablation (vanilla L0, + sparsity constraint, + diversity loss,
+ distillation) with the sparsity and parameters each reached (CSV and Markdown)."""

from polyprune.io import atomic_file, read_json
from polyprune.jobs import job
from polyprune.report import cell_sizes, score_table, task_scores, write_csv

ROWS = {
    "l0": "vanilla L0 (Eq 10)",
    "l0con": "+ sparsity constraint (Eq 11)",
    "l0imp": "+ diversity loss (Eq 12)",
    "l0impkd": "+ distillation from the dense model",
}

with job(snakemake) as settings:
    finetune = settings["finetune"]
    tasks = [
        t for t in finetune["tasks"] if t in (finetune.get("ablation_tasks") or finetune["tasks"])
    ]
    params = {p["cell"]: p for p in (read_json(f, "params") for f in snakemake.input.params)}
    sizes = cell_sizes(params, settings["pruning"]["component_weights"])
    scores, spread = task_scores(snakemake.input.results)
    header, rows, text = score_table(
        scores, snakemake.params.cells, finetune["modes"], tasks, sizes, spread
    )
    write_csv(snakemake.output.csv, header, rows)
    legend = "\n".join(f"- `{a}`: {what}" for a, what in ROWS.items())
    with atomic_file(snakemake.output.md) as tmp:
        tmp.write_text(
            f"# Table 2 ({settings['identity']['run']})\n\n"
            "The improved-L0 ablation, each row adding one part to the one above (cell names"
            f" start with the algorithm):\n\n{legend}\n\nColumns as in Table 1.\n\n{text}"
        )
