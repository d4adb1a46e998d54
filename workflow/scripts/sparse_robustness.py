"""The second study: dense and sparse models on clean and perturbed test sets."""

from polyprune.jobs import job
from polyprune.report import write_records_table
from polyprune.sparse_study import load_results, robustness_rows

with job(snakemake) as settings:
    seed = settings["sparse_finetuning"]["perturbations"]["seed"]
    write_records_table(
        robustness_rows(load_results(snakemake.input)),
        snakemake.output.csv,
        snakemake.output.md,
        f"Second study: robustness ({settings['identity']['run']})",
        "Mean NER F1 over the languages on each test set (mean and std over seeds) and its change"
        f" from the clean test set. Perturbations (seed {seed}): docs/second-study.md.",
    )
