"""Figure 2: per-language XNLI translate-train-all accuracy change of each pruned cell against
the language's pretraining corpus size (log scale), with Pearson's r (against log10 size) and
its bootstrap interval per algorithm group (PNG, PDF, and the CSVs of points and statistics)."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from polyprune.config import language_rows
from polyprune.figures import accuracy_losses, pearson_with_ci, save_figure
from polyprune.jobs import job
from polyprune.report import task_scores, write_csv

with job(snakemake) as settings:
    by_key, spread = task_scores(snakemake.input)  # a cell's mean over its fine-tuning seeds
    scores = {cell: by_lang for (cell, _, task), by_lang in by_key.items() if task == "xnli"}
    seed_std = {cell: s["std_by_lang"] for (cell, _, task), s in spread.items() if task == "xnli"}
    languages = language_rows(settings)
    unit = languages[0]["unit"]
    sizes = {r["code"]: float(r["corpus"]) for r in languages if r["corpus"] is not None}
    points = pd.DataFrame(accuracy_losses(scores, sizes, seed_std))
    write_csv(snakemake.output.csv, list(points.columns), points.values.tolist())
    stats = []
    for group, part in points.groupby("algorithm", sort=True):
        x = [math.log10(v) for v in part["corpus"]]
        r, low, high = pearson_with_ci(x, list(part["delta"]), seed=settings["identity"]["seed"])
        stats.append([group, len(part), r, low, high])
    write_csv(snakemake.output.stats, ["algorithm", "points", "r", "ci_low", "ci_high"], stats)
    label = {g: f"{g}: r = {r:.2f} [{lo:.2f}, {hi:.2f}]" for g, _, r, lo, hi in stats}
    points["group"] = points["algorithm"].map(label)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    sns.scatterplot(points, x="corpus", y="delta", hue="group", style="cell", ax=ax, zorder=3)
    if points["spread"].any():  # one standard deviation over the fine-tuning seeds
        ax.errorbar(
            points["corpus"], points["delta"], yerr=points["spread"], fmt="none",
            ecolor="grey", elinewidth=0.8, capsize=2, zorder=2,
        )  # fmt: skip
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel(f"pretraining corpus ({unit}, log scale)")
    ax.set_ylabel("XNLI accuracy, pruned - dense (translate-train-all)")
    bars = ", bars: ±1 std over seeds" if points["spread"].any() else ""
    ax.set_title(f"Figure 2: accuracy change by corpus size (r: 95% bootstrap CI{bars})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, (snakemake.output.png, snakemake.output.pdf))
    plt.close(fig)
