rule bench_params:
    input:
        f"{OUT}/cells/{{cell}}/pruned",
    output:
        f"{OUT}/cells/{{cell}}/params.json",
    log:
        f"{LOGS}/bench_params/{{cell}}.log",
    conda:
        "../envs/train.yaml"
    params:
        settings=settings(),
    script:
        "../workflow/scripts/params.py"
