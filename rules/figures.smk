# The paper's figures: PNG and PDF made with seaborn, each with the CSV of its data. A figure
# whose cells the config does not have is not planned (study_outputs).


rule figure2:
    input:
        [
            f"{OUT}/finetune/{cell}/xnli/translate-train-all/seed{seed}/selected.json"
            for cell in [polyconfig.DENSE, *FIGURE_CELLS[2]]
            for seed in polyconfig.finetune_seeds(config, cell)
        ],
    output:
        png=in_report(f"{OUT}/figures/figure2.png", "Figure 2", "figure2", file="plot"),
        pdf=f"{OUT}/figures/figure2.pdf",
        csv=in_report(f"{OUT}/figures/figure2.csv", "Figure 2", "figure2", file="data"),
        stats=in_report(
            f"{OUT}/figures/figure2-stats.csv", "Figure 2", "figure2", file="statistics"
        ),
    log:
        f"{LOGS}/figure2.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings(*LANGUAGE_KEYS),
    script:
        "../workflow/scripts/figure2.py"


rule figure3:
    input:
        [f"{OUT}/cells/{cell}/params.json" for cell in [polyconfig.DENSE, *FIGURE_CELLS[3]]],
    output:
        png=in_report(f"{OUT}/figures/figure3.png", "Figure 3", "figure3", file="plot"),
        pdf=f"{OUT}/figures/figure3.pdf",
        csv=in_report(f"{OUT}/figures/figure3.csv", "Figure 3", "figure3", file="data"),
    log:
        f"{LOGS}/figure3.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings("importance.normalize"),
    script:
        "../workflow/scripts/figure3.py"


rule subnetworks:
    input:
        [f"{OUT}/cells/{cell}/pruned" for cell in NONSHARED],
    output:
        in_report(f"{OUT}/figures/figure7.csv", "Figure 7", "figure7", file="data"),
    log:
        f"{LOGS}/subnetworks.log",
    conda:
        "../envs/train.yaml"
    params:
        settings=settings(),
        cells=NONSHARED,
        families={row["code"]: row["family"] for row in polyconfig.language_rows(config)},
    script:
        "../workflow/scripts/subnetworks.py"


rule figure7:
    input:
        rules.subnetworks.output[0],
    output:
        png=in_report(f"{OUT}/figures/figure7.png", "Figure 7", "figure7", file="plot"),
        pdf=f"{OUT}/figures/figure7.pdf",
    log:
        f"{LOGS}/figure7.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings(),
    script:
        "../workflow/scripts/figure7.py"


rule figure4:
    input:
        results=[
            f"{OUT}/finetune/{cell}/xnli/{DS_MODE}/seed{seed}/selected.json"
            for cell in [polyconfig.DENSE, *DS_CELLS]
            for seed in polyconfig.finetune_seeds(config, cell)
        ],
        params=[f"{OUT}/cells/{cell}/params.json" for cell in [polyconfig.DENSE, *DS_CELLS]],
        throughput=rules.bench_throughput.output.csv,
    output:
        png=in_report(f"{OUT}/figures/figure4.png", "Figure 4", "figure4", file="plot"),
        pdf=f"{OUT}/figures/figure4.pdf",
        csv=in_report(f"{OUT}/figures/figure4.csv", "Figure 4", "figure4", file="data"),
    log:
        f"{LOGS}/figure4.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings("throughput.seq_len"),
        mode=DS_MODE,
    script:
        "../workflow/scripts/figure4.py"


rule figure5:
    input:
        [f"{OUT}/cells/{cell}/params.json" for cell in [polyconfig.DENSE, *DS_CELLS]],
    output:
        png=in_report(f"{OUT}/figures/figure5.png", "Figure 5", "figure5", file="plot"),
        pdf=f"{OUT}/figures/figure5.pdf",
        csv=in_report(f"{OUT}/figures/figure5.csv", "Figure 5", "figure5", file="data"),
    log:
        f"{LOGS}/figure5.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings(),
        figure=5,
    script:
        "../workflow/scripts/figure5_6.py"


rule figure6:
    input:
        [f"{OUT}/cells/{cell}/params.json" for cell in [polyconfig.DENSE, *DS_CELLS]],
    output:
        png=in_report(f"{OUT}/figures/figure6.png", "Figure 6", "figure6", file="plot"),
        pdf=f"{OUT}/figures/figure6.pdf",
        csv=in_report(f"{OUT}/figures/figure6.csv", "Figure 6", "figure6", file="data"),
    log:
        f"{LOGS}/figure6.log",
    conda:
        "../envs/report.yaml"
    params:
        settings=settings(),
        figure=6,
    script:
        "../workflow/scripts/figure5_6.py"
