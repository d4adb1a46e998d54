"""Figure 7: the normalised Hamming distance between the languages' subnetworks, one heatmap per
non-shared cell, languages ordered by family (PNG and PDF)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from polyprune.figures import save_figure
from polyprune.jobs import job

with job(snakemake):
    data = pd.read_csv(snakemake.input[0])
    cells = list(dict.fromkeys(data["cell"]))
    order = (
        data[["language_a", "family_a"]]
        .drop_duplicates()
        .sort_values(["family_a", "language_a"])["language_a"]
        .tolist()
    )
    top = data["hamming"].max()  # one colour scale for every panel
    size = max(3.0, 0.35 * len(order) + 1.5)
    fig, axes = plt.subplots(1, len(cells), figsize=(size * len(cells), size), squeeze=False)
    for ax, cell in zip(axes[0], cells, strict=True):
        matrix = data[data["cell"] == cell].pivot(
            index="language_a", columns="language_b", values="hamming"
        )
        sns.heatmap(
            matrix.loc[order, order], ax=ax, vmin=0, vmax=top, cmap="viridis", square=True,
            cbar_kws={"label": "normalised Hamming distance"},
        )  # fmt: skip
        ax.set_title(cell)
        ax.set_xlabel("")
        ax.set_ylabel("")
    fig.suptitle("Figure 7: distance between the languages' subnetworks (ordered by family)")
    fig.tight_layout()
    save_figure(fig, snakemake.output)
    plt.close(fig)
