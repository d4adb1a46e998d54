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
        results=table1_inputs(),
        chance=rules.chance.output[0],
    output:
        md=f"{OUT}/tables/table1.md",
        csv=f"{OUT}/tables/table1.csv",
        languages=f"{OUT}/tables/table1-languages.csv",
    log:
        f"{LOGS}/table1.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings("finetune.tasks", "finetune.modes"),
        cells=CELLS,
    script:
        "../workflow/scripts/table1.py"
