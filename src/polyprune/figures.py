"""The data behind the paper's figures, from result files (torch-free: the report rules read it).
Each function returns rows for the figure's CSV; the scripts draw them."""

from __future__ import annotations

import math
import random

from polyprune.config import DENSE, LEARNED, parse_cell


def algorithm_group(cell: str) -> str:
    """Figure 2's grouping: gradient-based or regularization-based (the L0 family)."""
    algorithm = parse_cell(cell).algorithm
    return "regularization" if algorithm in LEARNED else algorithm


def layer_sparsity(params: dict) -> list[dict]:
    """Figure 3: per layer, the share of the dense model's heads and of its FFN units that each
    pruned cell removes, averaged over the cell's gate sets. `params` maps cells to their
    params.json (the dense one included); cells of another depth (DistilXLM-R) are left out."""
    dense = params[DENSE]["stored"]
    rows = []
    for cell, counts in params.items():
        sets = list(counts.get("gate_sets", {}).values()) or [counts["stored"]]
        if cell == DENSE or len(sets[0]["heads"]) != len(dense["heads"]):
            continue
        for kind in ("heads", "ffn"):
            for layer, full in enumerate(dense[kind]):
                kept = sum(s[kind][layer] for s in sets) / len(sets)
                rows.append(
                    {"cell": cell, "kind": kind, "layer": layer, "sparsity": 1 - kept / full}
                )
    return rows


def accuracy_losses(scores: dict, sizes: dict, spread: dict | None = None) -> list[dict]:
    """Figure 2: per pruned cell and test language, the accuracy of the cell minus the dense
    model's, beside the language's pretraining corpus size. `scores` maps cells to the test
    scores of the task per language (selected.json's test["xnli"]), `spread` (optional) cells
    fine-tuned with several seeds to the seeds' standard deviation per language (task_scores'
    std_by_lang): each difference's `spread` is sqrt(std_cell² + std_dense²), 0 with one seed
    each."""
    dense = scores[DENSE]
    spread = spread or {}

    def variance(cell, lang):
        return spread.get(cell, {}).get(lang, {}).get("accuracy", 0.0) ** 2

    rows = []
    for cell, by_lang in scores.items():
        if cell == DENSE:
            continue
        for lang, metrics in by_lang.items():
            if lang in sizes and lang in dense:
                rows.append(
                    {
                        "cell": cell,
                        "algorithm": algorithm_group(cell),
                        "language": lang,
                        "corpus": sizes[lang],
                        "delta": metrics["accuracy"] - dense[lang]["accuracy"],
                        "spread": math.sqrt(variance(cell, lang) + variance(DENSE, lang)),
                    }
                )
    return rows


def pearson(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else float("nan")


def pearson_with_ci(
    x: list[float], y: list[float], resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Pearson's r and a percentile bootstrap interval over the points (resampled with
    replacement; resamples without spread are skipped)."""
    rng = random.Random(seed)
    n, found = len(x), []
    for _ in range(resamples):
        pick = [rng.randrange(n) for _ in range(n)]
        r = pearson([x[i] for i in pick], [y[i] for i in pick])
        if not math.isnan(r):
            found.append(r)
    found.sort()
    if not found:
        return pearson(x, y), float("nan"), float("nan")
    low = found[int((1 - level) / 2 * (len(found) - 1))]
    high = found[int((1 + level) / 2 * (len(found) - 1))]
    return pearson(x, y), low, high


def save_figure(fig, paths) -> None:
    """Write a matplotlib figure to each path (format from its suffix), atomically and without a
    creation date, so that two runs of one configuration write the same bytes."""
    from polyprune.io import atomic_file

    for path in paths:
        kind = str(path).rsplit(".", 1)[1]
        metadata = {"CreationDate": None} if kind == "pdf" else {}
        with atomic_file(path) as tmp:
            fig.savefig(tmp, format=kind, dpi=150, metadata=metadata)


def _gate_sets(counts: dict) -> list[dict]:
    """A params.json's counts per gate set, or of the stored model when it has none."""
    return list(counts.get("gate_sets", {}).values()) or [counts["stored"]]


def _ds_cut(cell: str) -> tuple[str, float] | None:
    spec = parse_cell(cell)
    return (f"{spec.algorithm}-{spec.setting}", spec.sparsity) if spec.dynamic else None


def _ds_cuts(params: dict):
    """(DS run, sparsity, counts per gate set) of every Dynamic Sparsification cut in `params`."""
    for cell, counts in params.items():
        cut = _ds_cut(cell)
        if cut is not None:
            yield *cut, _gate_sets(counts)


def component_pruning(params: dict) -> list[dict]:
    """Figure 5: per Dynamic Sparsification run and grid sparsity, the share of the dense
    model's embedding ranks (of d), heads and FFN units that the cut removes, averaged over its
    gate sets. `params` maps cells to params.json, the dense one included."""
    dense = params[DENSE]["stored"]
    d = dense["heads"][0] * dense["head_dim"]  # the dense model's hidden size
    full = {"heads": sum(dense["heads"]), "ffn": sum(dense["ffn"])}
    rows = []
    for run, sparsity, sets in _ds_cuts(params):
        ranks = [d if s["embedding_rank"] is None else s["embedding_rank"] for s in sets]
        shares = {
            "embeddings": 1 - sum(ranks) / len(sets) / d,
            "heads": 1 - sum(sum(s["heads"]) for s in sets) / len(sets) / full["heads"],
            "ffn": 1 - sum(sum(s["ffn"]) for s in sets) / len(sets) / full["ffn"],
        }
        rows += [
            {"run": run, "sparsity": sparsity, "kind": kind, "pruned": share}
            for kind, share in shares.items()
        ]
    return rows


def layer_params(params: dict) -> list[dict]:
    """Figure 6: per Dynamic Sparsification run, grid sparsity and layer, the share of the
    dense layer's parameters that the cut keeps (averaged over its gate sets)."""
    dense = params[DENSE]["stored"]["encoder_layers"]
    rows = []
    for run, sparsity, sets in _ds_cuts(params):
        for layer, full in enumerate(dense):
            kept = sum(s["encoder_layers"][layer] for s in sets) / len(sets)
            rows.append({"run": run, "sparsity": sparsity, "layer": layer, "kept": kept / full})
    return rows


def sparsity_curves(xnli: dict, params: dict, throughput: list[dict]) -> list[dict]:
    """Figure 4: per Dynamic Sparsification run and grid sparsity, XNLI accuracy (`xnli`: cell
    to its average zero-shot test accuracy), total parameters (mean over gate sets), and CPU and
    GPU throughput (rows of throughput.csv), each as (run, sparsity, measure, value); the dense
    model is the reference at sparsity 0."""
    speed = {(r["cell"], r["setting"]): float(r["sequences_per_s"]) for r in throughput}
    rows = []
    for cell, counts in params.items():
        cut = _ds_cut(cell)
        if cell != DENSE and cut is None:
            continue
        run, sparsity = cut or ("dense", 0.0)
        sets = _gate_sets(counts)
        measures = {
            "XNLI accuracy": xnli.get(cell),
            "parameters (M)": sum(s["total"] for s in sets) / len(sets) / 1e6,
            "CPU sequences/s": speed.get((cell, "cpu")),
            "GPU sequences/s": speed.get((cell, "gpu")),
        }
        rows += [
            {"run": run, "sparsity": sparsity, "measure": m, "value": v}
            for m, v in measures.items()
            if v is not None
        ]
    return rows
