"""Figure 6: the share of each layer's parameters that Dynamic Sparsification keeps as the
sparsity grows, per DS run (PNG, PDF, CSV)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from polyprune.figures import layer_params, save_figure
from polyprune.io import read_json
from polyprune.jobs import job
from polyprune.report import write_csv

with job(snakemake):
    params = {p["cell"]: p for p in (read_json(f, "params") for f in snakemake.input)}
    data = pd.DataFrame(layer_params(params))
    write_csv(snakemake.output.csv, list(data.columns), data.values.tolist())
    runs = sorted(data["run"].unique())
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.8), sharey=True, squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        part = data[data["run"] == run]
        sns.lineplot(
            part, x="sparsity", y="kept", hue="layer", marker="o", ax=ax, palette="viridis"
        )
        ax.set_title(run)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("share of the layer's parameters kept")
    fig.suptitle("Figure 6: parameters kept per layer as the sparsity grows")
    fig.tight_layout()
    save_figure(fig, (snakemake.output.png, snakemake.output.pdf))
    plt.close(fig)
