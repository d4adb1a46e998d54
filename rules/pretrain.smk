rule pretrain:
    input:
        init=cell_init,
        tokenizer=rules.tokenizer.output[0],
        shards=shards(LANGS),
    output:
        directory(f"{OUT}/cells/{{cell}}/model"),
    log:
        f"{LOGS}/pretrain/{{cell}}.log",
    conda:
        "../envs/train.yaml"
    threads: 1
    params:
        launch=launcher,
        settings=lambda wildcards: settings(
            "pretraining",
            "data.mlm_probability",
            "data.sampling_alpha",
            objective=polyconfig.objective_spec(config, wildcards.cell),
        ),
        # checkpoints live outside the output, so that a failed job keeps them for resuming
        checkpoints=f"{OUT}/checkpoints/{{cell}}",
    shell:
        "{params.launch} --threads {threads} train --section pretraining"
        " --config {params.settings:q} --init {input.init:q} --tokenizer {input.tokenizer:q}"
        " --shards {input.shards:q} --out {output:q} --checkpoints {params.checkpoints:q}"
        " > {log:q} 2>&1"


rule export:
    input:
        cell_model,
    output:
        model=directory(f"{OUT}/cells/{{cell}}/pruned"),
        params=result_in_report(
            f"{OUT}/cells/{{cell}}/params.json", "params", "Cells", file="parameters"
        ),
    log:
        f"{LOGS}/export/{{cell}}.log",
    conda:
        "../envs/train.yaml"
    params:
        settings=settings(),
    script:
        "../workflow/scripts/export.py"


rule mlm_eval:
    input:
        before=cell_init,
        after=f"{OUT}/cells/{{cell}}/pruned",
        tokenizer=rules.tokenizer.output[0],
        shards=shards(LANGS),
    output:
        result_in_report(f"{OUT}/cells/{{cell}}/mlm.json", "mlm", "Cells", file="MLM loss"),
    log:
        f"{LOGS}/mlm_eval/{{cell}}.log",
    conda:
        "../envs/train.yaml"
    params:
        settings=settings("data.mlm_probability"),
    script:
        "../workflow/scripts/mlm_eval.py"
