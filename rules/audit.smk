# `snakemake --cores 2 audit`: re-run a seeded sample of jobs into results/<run>/audit/ and hold
# every number they derive against the original (audit.csv, audit.md). Each audit_<stage> rule is
# its stage's rule with other outputs and logs only: the same inputs, settings and script.

from polyprune import audit as polyaudit

AUDIT = polyaudit.settings(config.get("audit"))
AUDITED = f"{OUT}/audit"
AUDIT_LOGS = f"{LOGS}/audit"
PRUNED = [cell for cell in CELLS if is_gradient(cell)]  # the cells that prune makes
# the jobs of each stage in this DAG, each as the outputs it writes
AUDIT_JOBS = {
    "importance": [
        (path,)
        for path in sorted(
            {p for cell in PRUNED for p in cell_scores(SimpleNamespace(cell=cell)).values()}
        )
    ],
    "prune": [
        tuple(expand([rules.prune.output.gates, rules.prune.output.model], cell=cell))
        for cell in PRUNED
    ],
    # a dense row without continued pretraining has no pretrain job (cell_model: the base)
    "pretrain": [
        (model,)
        for model in [cell_model(SimpleNamespace(cell=cell)) for cell in MADE_CELLS]
        if model in expand(rules.pretrain.output[0], cell=MADE_CELLS)
    ],
    "mlm_eval": [tuple(expand(rules.mlm_eval.output[0], cell=cell)) for cell in CELLS],
    "finetune": [
        tuple(
            expand(rules.finetune.output[0], cell=c, train_set=t, mode=m, seed=s, lr=lr, epochs=ep)
        )
        for c in CELLS
        for t in training_sets(CELL_TASKS[c])
        for m in polyconfig.cell_modes(config, c)  # CELL_TASKS are empty without finetune
        for s in polyconfig.finetune_seeds(config, c)
        for lr, ep in grid(t, m)
    ],
    "retrieval": [
        tuple(expand(rules.retrieval.output[0], cell=cell, task=task))
        for cell in CELLS
        for task in CELL_TASKS[cell]
        if task in RETRIEVAL_TASKS
    ],
}
AUDIT_PAIRS = polyaudit.pairs(AUDIT_JOBS, AUDIT, OUT, AUDITED)


use rule importance as audit_importance with:
    output:
        polyaudit.moved(OUT, AUDITED, rules.importance.output[0]),
    log:
        f"{AUDIT_LOGS}/importance/{{scores}}.log",


use rule prune as audit_prune with:
    output:
        model=directory(polyaudit.moved(OUT, AUDITED, rules.prune.output.model)),
        gates=polyaudit.moved(OUT, AUDITED, rules.prune.output.gates),
    log:
        f"{AUDIT_LOGS}/prune/{{cell}}.log",


# a fresh start, in a shadow directory: never a resume from the original's checkpoints
use rule pretrain as audit_pretrain with:
    output:
        directory(polyaudit.moved(OUT, AUDITED, rules.pretrain.output[0])),
    log:
        f"{AUDIT_LOGS}/pretrain/{{cell}}.log",
    shadow:
        "minimal"
    params:
        checkpoints=f"{AUDITED}/checkpoints/{{cell}}",


use rule mlm_eval as audit_mlm_eval with:
    output:
        polyaudit.moved(OUT, AUDITED, rules.mlm_eval.output[0]),
    log:
        f"{AUDIT_LOGS}/mlm_eval/{{cell}}.log",


if FINETUNE:

    use rule finetune as audit_finetune with:
        output:
            polyaudit.moved(OUT, AUDITED, rules.finetune.output[0]),
        log:
            f"{AUDIT_LOGS}/finetune/{{cell}}/{{train_set}}/{{mode}}/seed{{seed}}/lr{{lr}}-ep{{epochs}}.log",

    use rule retrieval as audit_retrieval with:
        output:
            polyaudit.moved(OUT, AUDITED, rules.retrieval.output[0]),
        log:
            f"{AUDIT_LOGS}/retrieval/{{cell}}/{{task}}.log",


rule audit:
    input:
        original=[original for _, original, _ in AUDIT_PAIRS],
        rederived=[rederived for _, _, rederived in AUDIT_PAIRS],
    output:
        csv=f"{AUDITED}/audit.csv",
        md=f"{AUDITED}/audit.md",
    log:
        f"{AUDIT_LOGS}/audit.log",
    conda:
        "../envs/train.yaml"
    params:
        settings=settings("audit"),
        pairs=AUDIT_PAIRS,
    script:
        "../workflow/scripts/audit.py"
