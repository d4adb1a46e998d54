rule bench_params:
    input:
        f"{OUT}/cells/{{cell}}/pruned",
    output:
        result_in_report(f"{OUT}/cells/{{cell}}/params.json", "params", "Cells", file="parameters"),
    log:
        f"{LOGS}/bench_params/{{cell}}.log",
    conda:
        "../envs/train.yaml"
    params:
        settings=settings(),
    script:
        "../workflow/scripts/params.py"
