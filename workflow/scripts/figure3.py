"""Figure 3: the share of each layer's attention heads and of its FFN units that each pruned cell
removes, one line per algorithm and setting (PNG, PDF and the CSV of its data)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from polyprune.figures import layer_sparsity, save_figure
from polyprune.io import read_json
from polyprune.jobs import job
from polyprune.report import write_csv

with job(snakemake) as settings:
    params = {p["cell"]: p for p in (read_json(f, "params") for f in snakemake.input)}
    data = pd.DataFrame(layer_sparsity(params))
    write_csv(snakemake.output.csv, list(data.columns), data.values.tolist())
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (kind, title) in zip(axes, [("heads", "attention heads"), ("ffn", "FFN units")]):
        part = data[data["kind"] == kind]
        sns.lineplot(part, x="layer", y="sparsity", hue="cell", marker="o", ax=ax)
        ax.set_title(f"{title} pruned per layer")
        ax.set_xticks(sorted(part["layer"].unique()))
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    ranking = f"importance.normalize: {settings['importance']['normalize']}"
    fig.suptitle(f"Figure 3: per-layer sparsity (averaged over a cell's gate sets; {ranking})")
    fig.tight_layout()
    save_figure(fig, (snakemake.output.png, snakemake.output.pdf))
    plt.close(fig)
