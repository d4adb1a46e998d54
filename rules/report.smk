def table1_inputs():
    selected = [
        f"{OUT}/finetune/{cell}/{train_set}/{mode}/selected.json"
        for cell in CELLS
        for train_set in TRAIN_SETS
        for mode in FINETUNE["modes"]
    ]
    retrieval = [
        f"{OUT}/finetune/{cell}/{task}/retrieval.json"
        for cell in CELLS
        for task in TASKS
        if task in RETRIEVAL_TASKS
    ]
    return selected + retrieval


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
        settings=settings("finetune"),
        cells=CELLS,
    script:
        "../workflow/scripts/table1.py"
