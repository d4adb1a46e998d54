def cell_scores(wildcards):
    """Importance files a cell's gates come from: all languages together (shared) or one per
    language (non-shared)."""
    spec = polyconfig.parse_cell(wildcards.cell)
    if spec.setting == "shared":
        return {"shared": f"{OUT}/importance/{ALL}.safetensors"}
    return {lang: f"{OUT}/importance/{lang}.safetensors" for lang in LANGS}


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
        settings=settings("pruning", "importance"),
        gate_sets=lambda wildcards: list(cell_scores(wildcards)),
    script:
        "../workflow/scripts/prune.py"
