"""Figure 5: the share of embedding ranks, heads and FFN units that Dynamic Sparsification
removes as the sparsity grows, per DS run (PNG, PDF, CSV)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from polyprune.figures import component_pruning, save_figure
from polyprune.io import read_json
from polyprune.jobs import job
from polyprune.report import write_csv

with job(snakemake):
    params = {p["cell"]: p for p in (read_json(f, "params") for f in snakemake.input)}
    data = pd.DataFrame(component_pruning(params))
    write_csv(snakemake.output.csv, list(data.columns), data.values.tolist())
    runs = sorted(data["run"].unique())
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.8), sharey=True, squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        sns.lineplot(
            data[data["run"] == run], x="sparsity", y="pruned", hue="kind", marker="o", ax=ax
        )
        ax.set_title(run)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("share pruned")
    fig.suptitle("Figure 5: what Dynamic Sparsification prunes as the sparsity grows")
    fig.tight_layout()
    save_figure(fig, (snakemake.output.png, snakemake.output.pdf))
    plt.close(fig)
