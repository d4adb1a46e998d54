"""Figures 5 and 6, one panel per Dynamic Sparsification run against the cut's sparsity:
Figure 5 the share of embedding ranks, heads and FFN units pruned; Figure 6 the share of each
layer's parameters kept (PNG, PDF, CSV)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from polyprune.figures import component_pruning, layer_params, save_figure
from polyprune.io import read_json
from polyprune.jobs import job
from polyprune.report import write_csv

FIGURES = {  # data, y, hue, y label, title
    5: (component_pruning, "pruned", "kind", "share pruned",
        "what Dynamic Sparsification prunes as the sparsity grows"),
    6: (layer_params, "kept", "layer", "share of the layer's parameters kept",
        "parameters kept per layer as the sparsity grows"),
}  # fmt: skip

with job(snakemake):
    number = snakemake.params.figure
    rows, y, hue, ylabel, title = FIGURES[number]
    params = {p["cell"]: p for p in (read_json(f, "params") for f in snakemake.input)}
    data = pd.DataFrame(rows(params))
    write_csv(snakemake.output.csv, list(data.columns), data.values.tolist())
    runs = sorted(data["run"].unique())
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.8), sharey=True, squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        part = data[data["run"] == run]
        sns.lineplot(part, x="sparsity", y=y, hue=hue, marker="o", ax=ax, palette="viridis")
        ax.set_title(run)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(ylabel)
    fig.suptitle(f"Figure {number}: {title}")
    fig.tight_layout()
    save_figure(fig, (snakemake.output.png, snakemake.output.pdf))
    plt.close(fig)
