"""Throughput of every cell's final model, timed in one job so that their ratios share the
machine's noise (polyprune.bench.throughput_table): CPU, and GPU when there is one. A non-shared
cell is measured as its source language's subnetwork, physically cut."""

from polyprune.bench import param_counts, throughput_table
from polyprune.io import write_json
from polyprune.jobs import job
from polyprune.model import load_model
from polyprune.provenance import provenance
from polyprune.prune import subnetwork
from polyprune.report import write_csv

SETTINGS = ("cpu", "gpu", "gpu_larger")

with job(snakemake) as settings:
    source = settings["source_language"]
    models, measured = {}, {}
    for cell, path in zip(snakemake.params.cells, snakemake.input, strict=True):
        model = load_model(path)
        measured[cell] = "model"
        if model.gate_table is not None:  # export leaves only non-shared cells gated
            model, measured[cell] = subnetwork(model, source), f"{source} subnetwork"
        models[cell] = model
    rows = throughput_table(models, settings["throughput"], reference="dense")
    header = [
        "cell", "measured", "params", "embeddings", "encoder", "setting", "device", "batch",
        "seq_len", "threads", "seconds_median", "seconds_q1", "seconds_q3", "sequences_per_s",
        "speedup",
    ]  # fmt: skip
    table = []
    for row in rows:
        counts = param_counts(models[row["model"]].cfg)
        for setting in SETTINGS:
            if setting not in row:
                continue
            m, dense = row[setting], next(r for r in rows if r["model"] == "dense")[setting]
            table.append(
                [
                    row["model"], measured[row["model"]], counts["total"], counts["embeddings"],
                    counts["encoder"], setting, m.get("device", "cpu"), m["batch"],
                    row["seq_len"], m.get("threads", ""), m["seconds_median"], m["seconds_q1"],
                    m["seconds_q3"], m["sequences_per_s"],
                    m["sequences_per_s"] / dense["sequences_per_s"],
                ]
            )  # fmt: skip
    write_csv(snakemake.output.csv, header, table)
    write_json(
        snakemake.output.json,
        {"rows": rows, "provenance": provenance(settings["identity"], snakemake.input)},
    )
