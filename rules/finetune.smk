rule prepare_task:
    output:
        directory(f"{OUT}/tasks/{{task}}"),
    log:
        f"{LOGS}/prepare_task/{{task}}.log",
    conda:
        "../envs/data.yaml"
    params:
        settings=settings("tasks", "world"),
        languages=LANGS,
    script:
        "../workflow/scripts/prepare_task.py"


rule finetune:
    input:
        model=f"{OUT}/cells/{{cell}}/pruned",
        tokenizer=rules.tokenizer.output[0],
        tasks=lambda wildcards: [f"{OUT}/tasks/{t}" for t in finetune_tasks(wildcards)],
    output:
        f"{OUT}/finetune/{{cell}}/{{train_set}}/{{mode}}/seed{{seed}}/lr{{lr}}-ep{{epochs}}.json",
    log:
        f"{LOGS}/finetune/{{cell}}/{{train_set}}/{{mode}}/seed{{seed}}/lr{{lr}}-ep{{epochs}}.log",
    conda:
        "../envs/train.yaml"
    threads: 1
    params:
        settings=lambda wildcards: settings(
            "finetune.batch_size",
            "finetune.max_length",
            f"finetune.selection.{wildcards.mode}",
        ),
        tasks=finetune_tasks,
    script:
        "../workflow/scripts/finetune.py"


rule select:
    input:
        lambda wildcards: [
            f"{OUT}/finetune/{wildcards.cell}/{wildcards.train_set}/{wildcards.mode}/seed{wildcards.seed}/lr{lr}-ep{ep}.json"
            for lr, ep in grid(wildcards.train_set, wildcards.mode)
        ],
    output:
        result_in_report(
            f"{OUT}/finetune/{{cell}}/{{train_set}}/{{mode}}/seed{{seed}}/selected.json",
            "selected",
            "Fine-tuning",
            task="{train_set}",
            mode="{mode}",
            seed="{seed}",
        ),
    log:
        f"{LOGS}/select/{{cell}}/{{train_set}}/{{mode}}/seed{{seed}}.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=lambda wildcards: settings(
            f"finetune.selection.{wildcards.mode}", "source_language"
        ),
    script:
        "../workflow/scripts/select.py"


rule retrieval:
    input:
        model=f"{OUT}/cells/{{cell}}/pruned",
        tokenizer=rules.tokenizer.output[0],
        task=f"{OUT}/tasks/{{task}}",
    output:
        result_in_report(
            f"{OUT}/finetune/{{cell}}/{{task}}/retrieval.json",
            "retrieval",
            "Fine-tuning",
            task="{task}",
            mode="no training",
        ),
    log:
        f"{LOGS}/retrieval/{{cell}}/{{task}}.log",
    conda:
        "../envs/train.yaml"
    threads: 1
    params:
        settings=settings("finetune.retrieval_layer", "finetune.eval_batch_size"),
    script:
        "../workflow/scripts/retrieval.py"
