# Dynamic Sparsification (docs/method.md): one training per `pruning.dynamic.runs` entry, from the
# base model with gates from the gradient ranking, then one cell per grid sparsity, cut from it.
# From the cut on, a DS cell goes the way of every cell (export, MLM eval, counts, fine-tuning).
rule ds_train:
    input:
        unpack(ds_scores),
        init=f"{OUT}/base",
        tokenizer=rules.tokenizer.output[0],
        shards=shards(LANGS),
    output:
        directory(f"{OUT}/dynamic/{{dsrun}}"),
    log:
        f"{LOGS}/ds_train/{{dsrun}}.log",
    conda:
        "../envs/train.yaml"
    threads: 1
    params:
        launch=launcher,
        settings=lambda wildcards: settings(
            "pretraining",
            "data.mlm_probability",
            "data.sampling_alpha",
            objective={
                **polyconfig.objective_spec(config, wildcards.dsrun),
                "scores": ds_scores(wildcards),
            },
        ),
        checkpoints=f"{OUT}/checkpoints/{{dsrun}}",
    shell:
        "{params.launch} --threads {threads} train --section pretraining"
        " --config {params.settings:q} --init {input.init:q} --tokenizer {input.tokenizer:q}"
        " --shards {input.shards:q} --out {output:q} --checkpoints {params.checkpoints:q}"
        " > {log:q} 2>&1"


rule ds_cut:
    input:
        lambda wildcards: f"{OUT}/dynamic/{ds_run(wildcards.cell)}",
    output:
        directory(f"{OUT}/cells/{{cell}}/cut"),
    log:
        f"{LOGS}/ds_cut/{{cell}}.log",
    conda:
        "../envs/train.yaml"
    params:
        settings=settings(),
        sparsity=lambda wildcards: polyconfig.parse_cell(wildcards.cell).sparsity,
    script:
        "../workflow/scripts/ds_cut.py"
