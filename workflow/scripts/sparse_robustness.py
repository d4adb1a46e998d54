"""The second study: dense and sparse models on clean and perturbed test sets."""

from polyprune.io import atomic_file
from polyprune.jobs import job
from polyprune.report import markdown, write_csv
from polyprune.sparse_study import load_results, robustness_rows

with job(snakemake) as settings:
    rows = robustness_rows(load_results(snakemake.input))
    header = list(rows[0])
    table = [[round(v, 4) if isinstance(v, float) else v for v in r.values()] for r in rows]
    write_csv(snakemake.output.csv, header, [list(r.values()) for r in rows])
    with atomic_file(snakemake.output.md) as tmp:
        tmp.write_text(
            f"# Second study: robustness ({settings['identity']['run']})\n\n"
            "Mean NER F1 over the languages on each test set (mean and std over seeds) and its"
            " change from the clean test set. Perturbations (seed"
            f" {settings['sparse_finetuning']['perturbations']['seed']}): docs/second-study.md."
            "\n\n" + markdown(header, table)
        )
