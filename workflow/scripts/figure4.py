"""Figure 4: Dynamic Sparsification models against their sparsity: XNLI accuracy, parameters,
CPU and GPU throughput, one line per DS run, the dense model at 0 (PNG, PDF, CSV)."""

import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from polyprune.figures import save_figure, sparsity_curves
from polyprune.io import read_json
from polyprune.jobs import job
from polyprune.report import task_scores, write_csv

MEASURES = ["XNLI accuracy", "parameters (M)", "CPU sequences/s", "GPU sequences/s"]

with job(snakemake) as settings:
    scores, _ = task_scores(snakemake.input.results)
    mode = snakemake.params.mode
    xnli = {c: v["avg"]["accuracy"] for (c, m, t), v in scores.items() if (m, t) == (mode, "xnli")}
    params = {p["cell"]: p for p in (read_json(f, "params") for f in snakemake.input.params)}
    with open(snakemake.input.throughput, newline="") as fh:
        speed = list(csv.DictReader(fh))
    data = pd.DataFrame(sparsity_curves(xnli, params, speed))
    write_csv(snakemake.output.csv, list(data.columns), data.values.tolist())
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    for ax, measure in zip(axes, MEASURES, strict=True):
        part = data[data["measure"] == measure]
        ax.set_title(measure)
        ax.set_xlabel("sparsity")
        if part.empty:
            ax.text(0.5, 0.5, "not measured\n(no GPU in this run)", ha="center", va="center")
            continue
        runs = part[part["run"] != "dense"]
        sns.lineplot(runs, x="sparsity", y="value", hue="run", marker="o", ax=ax)
        dense = part[part["run"] == "dense"]
        ax.scatter(
            dense["sparsity"], dense["value"], color="black", marker="*", s=80, label="dense"
        )
        ax.set_ylabel("")
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Figure 4: Dynamic Sparsification against sparsity (XNLI {mode}; throughput:"
        f" sequences of {settings['throughput']['seq_len']} tokens)"
    )
    fig.tight_layout()
    save_figure(fig, (snakemake.output.png, snakemake.output.pdf))
    plt.close(fig)
