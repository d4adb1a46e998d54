rule chance:
    input:
        [f"{OUT}/tasks/{task}" for task in TASKS],
    output:
        f"{OUT}/tables/chance.json",
    log:
        f"{LOGS}/chance.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings(),
        tasks=TASKS,
    script:
        "../workflow/scripts/chance.py"


rule table1:
    input:
        unpack(lambda wildcards: table_inputs(1)),
        chance=rules.chance.output[0],
    output:
        md=in_report(f"{OUT}/tables/table1.md", "Table 1", "table1", file="table"),
        csv=in_report(f"{OUT}/tables/table1.csv", "Table 1", "table1", file="CSV"),
        languages=in_report(
            f"{OUT}/tables/table1-languages.csv", "Table 1", "table1", file="every score"
        ),
    log:
        f"{LOGS}/table1.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings("finetune.tasks", "finetune.modes", "pruning.component_weights"),
        cells=TABLE_CELLS[1],
        number=1,
    script:
        "../workflow/scripts/table1.py"


rule table3:
    input:
        unpack(lambda wildcards: table_inputs(3)),
        chance=rules.chance.output[0],
    output:
        md=in_report(f"{OUT}/tables/table3.md", "Table 3", "table3", file="table"),
        csv=in_report(f"{OUT}/tables/table3.csv", "Table 3", "table3", file="CSV"),
        languages=in_report(
            f"{OUT}/tables/table3-languages.csv", "Table 3", "table3", file="every score"
        ),
    log:
        f"{LOGS}/table3.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings("finetune.tasks", "finetune.modes", "pruning.component_weights"),
        cells=TABLE_CELLS[3],
        number=3,
    script:
        "../workflow/scripts/table1.py"


rule table2:
    input:
        unpack(lambda wildcards: table_inputs(2)),
    output:
        md=in_report(f"{OUT}/tables/table2.md", "Table 2", "table2", file="table"),
        csv=in_report(f"{OUT}/tables/table2.csv", "Table 2", "table2", file="CSV"),
    log:
        f"{LOGS}/table2.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings(
            "finetune.tasks",
            "finetune.ablation_tasks",
            "finetune.modes",
            "pruning.component_weights",
        ),
        cells=TABLE_CELLS[2],
    script:
        "../workflow/scripts/table2.py"


rule table4:
    output:
        md=in_report(f"{OUT}/tables/table4.md", "Table 4", "table4", file="table"),
        csv=in_report(f"{OUT}/tables/table4.csv", "Table 4", "table4", file="CSV"),
        prior=in_report(f"{OUT}/tables/table4-prior.csv", "Table 4", "table4", file="prior"),
    log:
        f"{LOGS}/table4.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings(
            "languages",
            "corpus.source",
            *(
                ["world.languages"]
                if SYNTHETIC
                else ["corpus.languages_table", "corpus.size_column"]
            ),
            "pruning.l0.family_prior",
        ),
    script:
        "../workflow/scripts/table4.py"


rule table5:
    input:
        results=[
            f"{OUT}/finetune/{cell}/xnli/{DS_MODE}/seed{seed}/selected.json"
            for cell in [*DS_CELLS, *TABLE5_REFERENCE]
            for seed in polyconfig.finetune_seeds(config, cell)
        ],
        params=[f"{OUT}/cells/{cell}/params.json" for cell in [*DS_CELLS, *TABLE5_REFERENCE]],
    output:
        md=in_report(f"{OUT}/tables/table5.md", "Table 5", "table5", file="table"),
        csv=in_report(f"{OUT}/tables/table5.csv", "Table 5", "table5", file="CSV"),
    log:
        f"{LOGS}/table5.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings("pruning.dynamic.reference"),
        mode=DS_MODE,
    script:
        "../workflow/scripts/table5.py"
