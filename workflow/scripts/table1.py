"""Table 1: every cell on the nine tasks in both modes (CSV and Markdown)."""

from polyprune.io import atomic_file, read_json
from polyprune.jobs import job
from polyprune.report import chance_row, markdown, per_language_rows, table1, task_scores, write_csv

with job(snakemake) as settings:
    scores = task_scores(snakemake.input.results)
    tasks = settings["finetune"]["tasks"]
    header, rows, text = table1(
        scores, snakemake.params.cells, settings["finetune"]["modes"], tasks
    )
    write_csv(snakemake.output.csv, header, rows)
    long_header = ["cell", "mode", "task", "language", "metric", "value"]
    write_csv(snakemake.output.languages, long_header, per_language_rows(scores))
    chance = read_json(snakemake.input.chance, "chance levels")
    chance_text = markdown(header[2:-1], [chance_row(chance, tasks)])
    with atomic_file(snakemake.output.md) as tmp:
        tmp.write_text(
            f"# Table 1 ({settings['identity']['run']})\n\n"
            "Averages over each task's test languages; QA columns are F1 / EM.\n\n"
            f"{text}\nChance levels (trivial predictors, see docs/results.md):\n\n{chance_text}"
        )
