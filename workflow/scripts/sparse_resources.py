"""The second study: each language's F1 change under sparsification against its resources,
with Pearson's r and its bootstrap interval, and who gains and who loses (figure, table)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from polyprune.figures import save_figure
from polyprune.jobs import job
from polyprune.report import write_csv, write_records_table
from polyprune.sparse_study import delta_statistics, language_deltas, load_results, resource_sizes

with job(snakemake) as settings:
    sizes = resource_sizes(settings, snakemake.input.task)
    points = pd.DataFrame(language_deltas(load_results(snakemake.input.scores), sizes))
    write_csv(snakemake.output.csv, list(points.columns), points.values.tolist())
    stats = pd.DataFrame(
        delta_statistics(points.to_dict("records"), list(sizes), settings["identity"]["seed"])
    )
    write_records_table(
        stats.to_dict("records"),
        snakemake.output.stats,
        snakemake.output.md,
        f"Second study: who gains, who loses ({settings['identity']['run']})",
        "Per regime, kind and sparsity: the languages whose clean test F1 rises or falls against"
        " the dense model (means over seeds), and Pearson's r of the change against log10 of each"
        " resource measure with a 95% bootstrap interval (nan: a measure without spread)."
        f" Measures: {', '.join(sizes)}.",
    )
    measure = "pretraining" if "pretraining" in sizes else "ner_train"
    grid = sns.relplot(
        points, x=measure, y="delta", hue="sparsity", style="kind", col="regime",
        height=3.5, aspect=1.2, palette="viridis",
    )  # fmt: skip
    for regime, ax in grid.axes_dict.items():
        ax.set_xscale("log")
        ax.axhline(0, color="grey", linewidth=0.8)
        part = stats[stats["regime"] == regime]
        text = "\n".join(
            f"{k} {s:g}: r = {r:.2f} [{lo:.2f}, {hi:.2f}]"
            for k, s, r, lo, hi in part[
                ["kind", "sparsity", f"r_{measure}", f"ci_low_{measure}", f"ci_high_{measure}"]
            ].values
        )
        ax.text(0.02, 0.02, text, transform=ax.transAxes, fontsize=6, va="bottom")
    grid.set_axis_labels(f"{measure} size (log scale)", "NER F1, sparse - dense")
    grid.figure.suptitle(
        "F1 change under sparsification by language resources (r: 95% bootstrap CI)"
    )
    grid.tight_layout()
    save_figure(grid.figure, (snakemake.output.png, snakemake.output.pdf))
    plt.close(grid.figure)
