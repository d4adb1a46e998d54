"""Table 5: each Dynamic Sparsification model at the cut whose parameter count comes nearest a
reference model's, against it on XNLI (`pruning.dynamic.reference`: a cell of the run, e.g. the
demo's DistilXLM-R, or published numbers with their source, e.g. mMiniLM-v1's)."""

from polyprune.config import parse_cell
from polyprune.io import atomic_file, read_json
from polyprune.jobs import job
from polyprune.report import markdown, matched_cuts, task_scores, write_csv

with job(snakemake) as settings:
    reference = settings["pruning"]["dynamic"]["reference"]
    mode = snakemake.params.mode
    scores, _ = task_scores(snakemake.input.results)
    params = {p["cell"]: p for p in (read_json(f, "params") for f in snakemake.input.params)}

    def xnli(cell):
        found = scores.get((cell, mode, "xnli"))
        return None if found is None else found["avg"]["accuracy"]

    def total(cell):
        sets = list(params[cell].get("gate_sets", {}).values()) or [params[cell]["stored"]]
        return sum(s["total"] for s in sets) / len(sets)

    if "cell" in reference:
        name, size, score = reference["cell"], total(reference["cell"]), xnli(reference["cell"])
        source = "trained in this run"
    else:
        name, size, score = reference["name"], reference["params"], reference["xnli"]
        source = reference["source"]
    header = ["model", "Sparsity %", "Params", f"XNLI ({mode})", "vs reference"]
    rows = [[name, "-", f"{size / 1e6:.2f}M", f"{score:.1f}", "-"]]
    for cell in matched_cuts(params, size).values():
        accuracy, sparsity = xnli(cell), 100 * parse_cell(cell).sparsity
        row = [cell, f"{sparsity:g}", f"{total(cell) / 1e6:.2f}M", f"{accuracy:.1f}"]
        rows.append([*row, f"{accuracy - score:+.1f}"])
    write_csv(snakemake.output.csv, header, rows)
    with atomic_file(snakemake.output.md) as tmp:
        tmp.write_text(
            f"# Table 5 ({settings['identity']['run']})\n\n"
            f"Each Dynamic Sparsification model at the grid sparsity whose parameter count comes"
            f" nearest the reference's ({name}: {source}); XNLI test accuracy averaged over"
            f" languages.\n\n{markdown(header, rows)}"
        )
