# The second study (docs/second-study.md): NER models sparsified while they are fine-tuned, one per
# regime x model variant x seed, scored on clean and perturbed test sets.


rule sparse_task:
    output:
        directory(f"{OUT}/sparse/task"),
    log:
        f"{LOGS}/sparse_task.log",
    conda:
        "../envs/data.yaml"
    params:
        settings=settings("tasks", "world"),
        languages=SPARSE_LANGS,
    script:
        "../workflow/scripts/sparse_task.py"


if SPARSE_OWN_MODEL:

    rule sparse_base:
        output:
            model=directory(f"{OUT}/sparse/base"),
            tokenizer=directory(f"{OUT}/sparse/tokenizer"),
        log:
            f"{LOGS}/sparse_base.log",
        conda:
            "../envs/train.yaml"
        params:
            settings=settings("sparse_finetuning.model", "sparse_finetuning.revision"),
        script:
            "../workflow/scripts/sparse_base.py"


rule sparse_tests:
    input:
        rules.sparse_task.output[0],
    output:
        directory(f"{OUT}/sparse/tests"),
    log:
        f"{LOGS}/sparse_tests.log",
    conda:
        "../envs/data.yaml"
    params:
        settings=settings("sparse_finetuning.perturbations"),
        test_sets=SPARSE_TESTS,
    script:
        "../workflow/scripts/sparse_tests.py"


rule sparse_finetune:
    input:
        model=SPARSE_MODEL,
        tokenizer=SPARSE_TOKENIZER,
        task=rules.sparse_task.output[0],
    output:
        directory(f"{SPARSE_RUN}/model"),
    log:
        f"{LOGS}/sparse_finetune/{{regime}}/{{variant}}/seed{{seed}}.log",
    conda:
        "../envs/train.yaml"
    threads: 1
    params:
        settings=sparse_train_settings,
    script:
        "../workflow/scripts/sparse_finetune.py"


rule sparse_eval:
    input:
        model=rules.sparse_finetune.output[0],
        tokenizer=SPARSE_TOKENIZER,
        tests=rules.sparse_tests.output[0],
    output:
        scores=report(
            f"{SPARSE_RUN}/scores.json",
            caption=f"{CAPTIONS}/sparse_scores.rst",
            category="Second study",
            subcategory="{regime}",
            labels=lambda w: {"regime": w.regime, "model": w.variant, "seed": w.seed},
        ),
        predictions=f"{SPARSE_RUN}/predictions.json",
    log:
        f"{LOGS}/sparse_eval/{{regime}}/{{variant}}/seed{{seed}}.log",
    conda:
        "../envs/train.yaml"
    threads: 1
    params:
        settings=settings("sparse_finetuning.eval_batch_size"),
        test_sets=SPARSE_TESTS,
    script:
        "../workflow/scripts/sparse_eval.py"


rule sparse_f1:
    input:
        scores=sparse_runs("scores.json"),
        task=rules.sparse_task.output[0],
    output:
        md=in_report(f"{OUT}/tables/sparse-f1.md", "Sparse F1", "sparse_f1", file="table"),
        csv=f"{OUT}/tables/sparse-f1.csv",
        png=in_report(f"{OUT}/figures/sparse-f1.png", "Sparse F1", "sparse_f1", file="plot"),
        pdf=f"{OUT}/figures/sparse-f1.pdf",
        data=in_report(f"{OUT}/figures/sparse-f1.csv", "Sparse F1", "sparse_f1", file="data"),
    log:
        f"{LOGS}/sparse_f1.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings(*SPARSE_ANALYSIS_KEYS),
    script:
        "../workflow/scripts/sparse_f1.py"


rule sparse_resources:
    input:
        scores=sparse_runs("scores.json"),
        task=rules.sparse_task.output[0],
    output:
        png=in_report(
            f"{OUT}/figures/sparse-resources.png",
            "Sparse resources",
            "sparse_resources",
            file="plot",
        ),
        pdf=f"{OUT}/figures/sparse-resources.pdf",
        csv=in_report(
            f"{OUT}/figures/sparse-resources.csv",
            "Sparse resources",
            "sparse_resources",
            file="data",
        ),
        md=in_report(
            f"{OUT}/tables/sparse-deltas.md", "Sparse resources", "sparse_deltas", file="table"
        ),
        stats=f"{OUT}/tables/sparse-deltas.csv",
    log:
        f"{LOGS}/sparse_resources.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings(*SPARSE_ANALYSIS_KEYS),
    script:
        "../workflow/scripts/sparse_resources.py"


rule sparse_robustness:
    input:
        sparse_runs("scores.json"),
    output:
        md=in_report(
            f"{OUT}/tables/sparse-robustness.md",
            "Sparse robustness",
            "sparse_robustness",
            file="table",
        ),
        csv=f"{OUT}/tables/sparse-robustness.csv",
    log:
        f"{LOGS}/sparse_robustness.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings("sparse_finetuning.perturbations"),
    script:
        "../workflow/scripts/sparse_robustness.py"


rule sparse_exemplars:
    input:
        sparse_runs("predictions.json"),
    output:
        md=in_report(
            f"{OUT}/tables/sparse-exemplars.md",
            "Sparse exemplars",
            "sparse_exemplars",
            file="table",
        ),
        csv=f"{OUT}/tables/sparse-exemplars.csv",
    log:
        f"{LOGS}/sparse_exemplars.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings(),
    script:
        "../workflow/scripts/sparse_exemplars.py"
