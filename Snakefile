# polyprune: structured pruning of multilingual pretrained encoders (Li et al., ACL 2022).
# `snakemake --cores 2` runs the demo study (config/config.yaml); see README.md.
from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


# --configfile replaces the demo configuration instead of being merged into it
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/importance.smk"
include: "rules/prune.smk"
include: "rules/pretrain.smk"
include: "rules/dynamic.smk"
include: "rules/bench.smk"
include: "rules/finetune.smk"
include: "rules/report.smk"
include: "rules/figures.smk"
include: "rules/sparse.smk"
include: "rules/audit.smk"


# Steps of seconds that read results and write selections, tables and figures: on a cluster they
# run beside Snakemake rather than wait in Slurm's queue.
localrules:
    all,
    select,
    chance,
    table1,
    table2,
    table3,
    table4,
    table5,
    figure2,
    figure3,
    figure4,
    figure5,
    figure6,
    sparse_f1,
    sparse_resources,
    sparse_robustness,
    sparse_exemplars,
    audit,


rule all:
    default_target: True
    input:
        study_outputs(),
