"""The second study: NER F1 against sparsity per language group (table, figure and its CSV)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from polyprune.figures import save_figure
from polyprune.jobs import job
from polyprune.report import write_csv, write_records_table
from polyprune.sparse_study import f1_by_group, language_groups, load_results, resource_sizes

with job(snakemake) as settings:
    sizes = resource_sizes(settings, snakemake.input.task)
    measure = "pretraining" if "pretraining" in sizes else "ner_train"
    groups = language_groups(sizes[measure], settings["sparse_finetuning"]["groups"])
    rows = pd.DataFrame(f1_by_group(load_results(snakemake.input.scores), groups))
    records = rows.to_dict("records")
    write_csv(snakemake.output.data, list(rows.columns), rows.values.tolist())
    members = {
        g: " ".join(sorted(lang for lang, x in groups.items() if x == g)) for g in groups.values()
    }
    write_records_table(
        records,
        snakemake.output.csv,
        snakemake.output.md,
        f"Second study: NER F1 against sparsity ({settings['identity']['run']})",
        "Test F1 (clean), mean over each group's languages, then mean and std over seeds. Groups"
        f" by {measure} size: " + "; ".join(f"{g}: {m}" for g, m in sorted(members.items())) + ".",
    )
    grid = sns.relplot(
        rows, x="sparsity", y="f1", hue="group", col="regime", row="kind", kind="line",
        marker="o", height=3, aspect=1.2, facet_kws={"margin_titles": True},
    )  # fmt: skip
    for (kind, regime), ax in grid.axes_dict.items():
        part = rows[(rows["kind"] == kind) & (rows["regime"] == regime)]
        for _, line in part.groupby("group"):
            ax.fill_between(
                line["sparsity"], line["f1"] - line["std"], line["f1"] + line["std"], alpha=0.15
            )
    grid.set_axis_labels("sparsity (share of encoder weights pruned)", "NER F1 (clean test)")
    grid.figure.suptitle(f"NER F1 against sparsity by {measure} group (bands: ±1 std over seeds)")
    grid.tight_layout()
    save_figure(grid.figure, (snakemake.output.png, snakemake.output.pdf))
    plt.close(grid.figure)
