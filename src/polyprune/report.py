"""The paper's tables from the results JSONs (CSV and Markdown), and chance levels of the tasks."""

from __future__ import annotations

import random
import statistics
from collections import Counter

from polyprune.config import DENSE, component_weights, parse_cell
from polyprune.io import read_json
from polyprune.tasks.spec import EVALUATION_TASKS, PRIMARY_METRIC, TASK_TYPES

TASK_TITLES = {
    "xnli": "XNLI",
    "pawsx": "PAWS-X",
    "udpos": "POS",
    "panx": "NER",
    "xquad": "XQuAD",
    "mlqa": "MLQA",
    "tydiqa": "TyDiQA",
    "bucc": "BUCC",
    "tatoeba": "Tatoeba",
}
MODE_TITLES = {"zero-shot": "Cross-lingual transfer", "translate-train-all": "Translate-train-all"}


def task_scores(result_files: list) -> tuple[dict, dict]:
    """{(cell, mode, task): {lang: {metric: value}, "avg": ...}} from selected.json files (one
    per cell x training set x mode x fine-tuning seed) and retrieval.json files (one per cell x
    task; no training, so the same scores stand in both modes). With several seeds the values
    are their means, and the second dict holds, per key, the seeds' standard deviation of each
    average metric (`std`), of each language's metrics (`std_by_lang`) and their number
    (`seeds`)."""
    runs = {}
    for path in result_files:
        result = read_json(path, "result")
        modes = [result["mode"]] if "mode" in result else list(MODE_TITLES)
        for mode in modes:
            for task, by_lang in result["test"].items():
                runs.setdefault((result["cell"], mode, task), []).append(by_lang)
    scores = {key: _mean(seeds) for key, seeds in runs.items()}
    spread = {
        key: {
            "seeds": len(seeds),
            "std": {m: statistics.stdev(r["avg"][m] for r in seeds) for m in seeds[0]["avg"]},
            "std_by_lang": {
                lang: {m: statistics.stdev(r[lang][m] for r in seeds) for m in metrics}
                for lang, metrics in seeds[0].items()
            },
        }
        for key, seeds in runs.items()
        if len(seeds) > 1
    }
    return scores, spread


def _mean(seeds: list[dict]) -> dict:
    return {
        lang: {m: statistics.fmean(r[lang][m] for r in seeds) for m in metrics}
        for lang, metrics in seeds[0].items()
    }


def _cell_value(by_lang: dict, task: str, spread: dict | None = None) -> str:
    avg = by_lang["avg"]
    if TASK_TYPES[task] == "qa":
        value = f"{avg['f1']:.1f} / {avg['exact_match']:.1f}"
        return value + (f" ± {spread['std']['f1']:.1f}" if spread else "")
    metric = PRIMARY_METRIC[TASK_TYPES[task]]
    return f"{avg[metric]:.1f}" + (f" ± {spread['std'][metric]:.1f}" if spread else "")


def encoder_sparsity(counts: dict, dense: dict, weights: dict) -> float:
    """The share of the dense encoder's heads and FFN units (Appendix B weights) that a model's
    parameter counts (bench.param_counts) no longer have: a removed layer counts in full."""
    unit = component_weights(dense["head_dim"], weights)

    def kept(c):
        return unit["heads"] * sum(c["heads"]) + unit["ffn"] * sum(c["ffn"])

    return 1 - kept(counts) / kept(dense)


def cell_sizes(params: dict, weights: dict) -> dict:
    """Per cell (from its params.json, `params` keyed by cell, the dense one included): encoder
    sparsity and total parameters, each averaged over the cell's gate sets (one per language
    in the non-shared setting), with the range of the sparsity across them."""
    dense = params[DENSE]["stored"]
    sizes = {}
    for cell, counts in params.items():
        sets = list(counts.get("gate_sets", {}).values()) or [counts["stored"]]
        sparsity = [encoder_sparsity(c, dense, weights) for c in sets]
        sizes[cell] = {
            "sparsity": sum(sparsity) / len(sparsity),
            "sparsity_range": [min(sparsity), max(sparsity)],
            "params": sum(c["total"] for c in sets) / len(sets),
        }
    return sizes


def _size_columns(size: dict | None) -> list[str]:
    if size is None:
        return ["-", "-"]
    low, high = size["sparsity_range"]
    spread = f" ({100 * low:.1f}-{100 * high:.1f})" if high - low >= 0.0005 else ""
    return [f"{100 * size['sparsity']:.1f}{spread}", f"{size['params'] / 1e6:.2f}M"]


def score_table(
    scores: dict,
    cells: list[str],
    modes: list[str],
    tasks: list[str],
    sizes: dict | None = None,
    spread: dict | None = None,
):
    """Rows (mode, cell); columns the encoder sparsity reached and the parameters (averages over
    a cell's gate sets), the tasks' averages over languages (QA: F1 / EM) and the average of the
    primary metrics (only for a row with every task: a partial average would not compare);
    with several fine-tuning seeds, the mean ± the seeds' standard deviation (QA: of F1).
    Returns (header, rows for CSV, Markdown text)."""
    spread = spread or {}
    ordered = [t for t in EVALUATION_TASKS if t in tasks]
    header = ["mode", "model", "Sparsity %", "Params", *(TASK_TITLES[t] for t in ordered), "Avg"]
    rows = []
    for mode in modes:
        for cell in cells:
            found = {t: scores.get((cell, mode, t)) for t in ordered}
            primary = [
                v["avg"][PRIMARY_METRIC[TASK_TYPES[t]]] for t, v in found.items() if v is not None
            ]
            rows.append(
                [
                    mode,
                    cell,
                    *_size_columns((sizes or {}).get(cell)),
                    *(
                        _cell_value(v, t, spread.get((cell, mode, t))) if v else "-"
                        for t, v in found.items()
                    ),
                    f"{sum(primary) / len(primary):.1f}" if len(primary) == len(ordered) else "-",
                ]
            )
    return header, rows, markdown(header, rows)


def per_language_rows(scores: dict) -> list[list]:
    """Long format for audits: cell, mode, task, language, metric, value."""
    out = []
    for (cell, mode, task), by_lang in sorted(scores.items()):
        for lang, metrics in by_lang.items():
            for metric, value in metrics.items():
                out.append([cell, mode, task, lang, metric, value])
    return out


def markdown(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(path, header: list[str], rows: list[list]) -> None:
    import csv

    from polyprune.io import atomic_file

    with atomic_file(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def write_records_table(rows: list[dict], csv_path, md_path, heading: str, text: str) -> None:
    """`rows` (dicts of one shape) as a CSV, and as Markdown under `heading` and `text` with
    numbers rounded to 4 decimals."""
    from polyprune.io import atomic_file

    header = list(rows[0]) if rows else []
    write_csv(csv_path, header, [list(r.values()) for r in rows])
    shown = [[round(v, 4) if isinstance(v, float) else v for v in r.values()] for r in rows]
    with atomic_file(md_path) as tmp:
        tmp.write_text(f"# {heading}\n\n{text}\n\n" + markdown(header, shown))


# ---- chance levels ----------------------------------------------------------------------------


def chance_scores(task_dir, seed: int = 0) -> dict:
    """What a predictor without knowledge scores on a task's test data, per language:
    pair tasks the majority training label, token tasks the majority training tag on every
    word, QA a random span of the gold answer's length, Tatoeba 100 / n, BUCC the expected F1 of
    mining with random scores (simulated)."""
    from polyprune.tasks.pipeline import manifest, split_records

    m = manifest(task_dir)
    kind = m["type"]
    rng = random.Random(seed)
    train = split_records(task_dir, "train", [m["source_lang"]]) if "train" in m["splits"] else {}
    out = {}
    for lang, records in split_records(task_dir, "test").items():
        out[lang] = _chance(kind, m["task"], records, train.get(m["source_lang"], []), rng)
    return out


def _chance(kind: str, task: str, records: list[dict], train: list[dict], rng) -> dict:
    from polyprune.tasks import metrics

    if kind == "pair":
        majority = Counter(r["label"] for r in train or records).most_common(1)[0][0]
        return {
            "accuracy": metrics.accuracy([majority] * len(records), [r["label"] for r in records])
        }
    if kind == "token":
        tag = Counter(t for r in train or records for t in r["tags"]).most_common(1)[0][0]
        predicted = [[tag] * len(r["tags"]) for r in records]
        return {"f1": metrics.seqeval_f1(predicted, [r["tags"] for r in records])}
    if kind == "qa":
        predictions = {r["id"]: _random_span(r, rng) for r in records}
        references = {r["id"]: r["answers"]["text"] for r in records}
        return metrics.squad_scores(predictions, references)
    if kind == "retrieval":
        return {"accuracy": 100.0 / len(records)}
    return {"f1": _random_mining_f1(records, rng)}


def _random_span(record: dict, rng) -> str:
    words = record["context"].split()
    n = max(1, len(record["answers"]["text"][0].split()))
    start = rng.randrange(max(1, len(words) - n + 1))
    return " ".join(words[start : start + n])


def _random_mining_f1(records: list[dict], rng) -> float:
    from polyprune.tasks import metrics

    sources = [r for r in records if r["side"] == "source"]
    targets = [r for r in records if r["side"] == "target"]
    candidates = [(s["id"], rng.choice(targets)["id"], rng.random()) for s in sources]
    gold = {(r["id"], r["gold"]) for r in sources if r["gold"] is not None}
    return metrics.bucc_f1(candidates, gold)["f1"]


def chance_row(chance: dict, tasks: list[str]) -> list[str]:
    """Table 1's columns for the chance levels (averaged over languages)."""
    ordered = [t for t in EVALUATION_TASKS if t in tasks]
    values = []
    for task in ordered:
        by_lang = chance[task]
        avg = {
            m: sum(s[m] for s in by_lang.values()) / len(by_lang)
            for m in next(iter(by_lang.values()))
        }
        values.append(_cell_value({"avg": avg}, task))
    return values


def matched_cuts(params: dict, target: float) -> dict[str, str]:
    """Table 5: per Dynamic Sparsification run, its cut whose total parameters (mean over gate
    sets) come nearest `target` (ties: the sparser cut). `params` maps cells to params.json."""
    best: dict[str, tuple[float, float, str]] = {}
    for cell, counts in params.items():
        spec = parse_cell(cell)
        if not spec.dynamic:
            continue
        sets = list(counts.get("gate_sets", {}).values()) or [counts["stored"]]
        total = sum(s["total"] for s in sets) / len(sets)
        run = f"ds-{spec.algorithm}-{spec.setting}"
        key = (abs(total - target), -spec.sparsity, cell)
        if run not in best or key < best[run]:
            best[run] = key
    return {run: cell for run, (_, _, cell) in sorted(best.items())}
