"""The second study's test sets: clean, and each perturbation (docs/second-study.md)."""

from polyprune.jobs import job
from polyprune.sparse_study import perturbed_test_sets, write_test_sets

with job(snakemake) as settings:
    spec = settings["sparse_finetuning"]["perturbations"]
    sets = perturbed_test_sets(snakemake.input[0], snakemake.params.test_sets, spec)
    write_test_sets(sets, snakemake.output[0], settings["identity"])
