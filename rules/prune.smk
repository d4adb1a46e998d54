rule prune:
    input:
        unpack(cell_scores),
        base=f"{OUT}/base",
    output:
        model=directory(f"{OUT}/cells/{{cell}}/init"),
        gates=f"{OUT}/cells/{{cell}}/gates.json",
    log:
        f"{LOGS}/prune/{{cell}}.log",
    conda:
        "../envs/train.yaml"
    params:
        settings=settings(
            "pruning.scope",
            "pruning.rank_by",
            "pruning.component_weights",
            "importance.normalize",
        ),
        gate_sets=lambda wildcards: list(cell_scores(wildcards)),
    script:
        "../workflow/scripts/prune.py"
