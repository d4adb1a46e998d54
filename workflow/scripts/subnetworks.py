"""Figure 7's data: the normalised Hamming distance between every two languages' subnetworks of
each non-shared cell, with the languages' families."""

from polyprune.analysis import gate_vectors, hamming_distances
from polyprune.jobs import job
from polyprune.model import load_model
from polyprune.report import write_csv

with job(snakemake) as settings:
    families = snakemake.params.families
    rows = []
    for cell, path in zip(snakemake.params.cells, snakemake.input, strict=True):
        for a, b, distance in hamming_distances(gate_vectors(load_model(path))):
            rows.append([cell, a, families[a], b, families[b], f"{distance:.6f}"])
    header = ["cell", "language_a", "family_a", "language_b", "family_b", "hamming"]
    write_csv(snakemake.output[0], header, rows)
