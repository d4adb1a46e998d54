rule bench_throughput:
    input:
        [f"{OUT}/cells/{cell}/pruned" for cell in CELLS],
    output:
        csv=f"{OUT}/tables/throughput.csv",
        json=f"{OUT}/tables/throughput.json",
    log:
        f"{LOGS}/bench_throughput.log",
    conda:
        "../envs/train.yaml"
    # every core: nothing else runs while it times (it sets its own thread count)
    threads: all_cores()
    params:
        settings=settings("throughput", "source_language"),
        cells=CELLS,
    script:
        "../workflow/scripts/throughput.py"
