"""The second study's steps (docs/second-study.md): NER models sparsified while they are
fine-tuned (one per regime x model variant x seed), their scores on clean and perturbed test
sets, and the rows of its tables and figures.

A model variant is `dense` (sparsity 0) or `<kind>-s<percent>` (config.sparse_variants); a
regime trains on the source language only (`zero-shot`) or on every language's training data
(`multilingual`).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from polyprune import robustness
from polyprune.config import DENSE, parse_sparse_variant
from polyprune.errors import DataError
from polyprune.io import atomic_dir, read_json, write_json
from polyprune.provenance import provenance
from polyprune.tasks.pipeline import manifest, read_records, split_records, write_records

TASK = "panx"
HEAD_FILE = "head.safetensors"
MASKS_FILE = "masks.safetensors"


def convert_base(name: str, revision: str | None, model_out, tokenizer_out, identity: dict):
    """A hub id or local checkpoint (XLM-R or BERT layout) and its tokenizer, saved locally so
    that no later job needs the network."""
    from transformers import AutoTokenizer

    from polyprune.fast_tokenizer import save_tokenizer
    from polyprune.model import convert_hf

    convert_hf(name, revision, model_out, {"provenance": provenance(identity)})
    tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
    with atomic_dir(tokenizer_out) as tmp:
        save_tokenizer(tokenizer, tmp)


# ---- test sets ----------------------------------------------------------------------------


def perturbed_test_sets(task_dir, names: list[str], spec: dict) -> dict[str, list[dict]]:
    """Each test set named by `config.sparse_test_sets`: the clean test records of every
    language, and each perturbation of them (polyprune.robustness). Unseen entities are drawn
    from the names in a language's records (all splits) that no training record of any language
    tags."""
    test = [r for records in split_records(task_dir, "test").values() for r in records]
    seed, out = spec["seed"], {}
    for name in names:
        kind, _, value = name.partition("-")
        if kind == "clean":
            out[name] = test
        elif kind == "char_noise":
            out[name] = robustness.char_noise(test, float(value.replace("p", ".")), seed)
        elif kind == "casing":
            out[name] = robustness.casing(test, value)
        elif kind == "unseen_entities":
            train = [r for rs in split_records(task_dir, "train").values() for r in rs]
            validation = [r for rs in split_records(task_dir, "validation").values() for r in rs]
            pool = test + validation + train
            seen = robustness.entity_names(train)
            out[name] = robustness.unseen_entities(test, seen, pool, seed)
        else:
            raise ValueError(f"unknown test set {name!r}")
    return out


def write_test_sets(sets: dict[str, list[dict]], out_dir, identity: dict) -> None:
    """<out_dir>/<test set>/<lang>.jsonl (the layout of a task's splits)."""
    with atomic_dir(out_dir) as tmp:
        for name, records in sets.items():
            by_lang: dict[str, list[dict]] = {}
            for r in records:
                by_lang.setdefault(r["lang"], []).append(r)
            for lang, lang_records in by_lang.items():
                write_records(tmp / name / f"{lang}.jsonl", lang_records)
        write_json(tmp / "provenance.json", provenance(identity))


# ---- fine-tuning with sparsification ------------------------------------------------------


def training_records(task_dir, regime: str) -> tuple[list[str], list[dict]]:
    m = manifest(task_dir)
    langs = [m["source_lang"]] if regime == "zero-shot" else m["splits"]["train"]
    return langs, [r for lang in langs for r in read_records(task_dir, "train", lang)]


def finetune_sparse(
    model_dir,
    tokenizer_dir,
    task_dir,
    regime: str,
    variant: str,
    seed: int,
    cfg: dict,
    out_dir,
    identity: dict,
    device: str = "cpu",
    log=print,
) -> dict:
    """Fine-tune the base model for NER in `regime`, pruned on the cubic schedule to the
    variant's sparsity (none for `dense`); save it (encoder with its gates, the tagging head and,
    unstructured, the masks) and return what it reached."""
    import torch
    from safetensors.torch import save

    from polyprune.data import load_tokenizer
    from polyprune.gates import Gates
    from polyprune.gmp import CubicSchedule, MagnitudePruner, encoder_matrices
    from polyprune.model import load_model, save_model
    from polyprune.prune import gated_model
    from polyprune.tasks.finetune import FinetuneSettings, finetune
    from polyprune.tasks.heads import Lengths

    kind, sparsity = parse_sparse_variant(variant)
    langs, records = training_records(task_dir, regime)
    model = load_model(model_dir)
    if kind == "structured":
        model = gated_model(model, {"shared": Gates.ones(model.cfg.heads, model.cfg.ffn, None)})
    pruners = []

    def pruning_hook(steps: int):
        schedule = cfg["schedule"]
        start = max(1, round(schedule["start"] * steps))
        end = max(start, round(schedule["end"] * steps))
        pruners.append(
            MagnitudePruner(
                model, CubicSchedule(sparsity, start, end, schedule["every"]), kind, cfg["scope"]
            )
        )
        return pruners[0].step

    settings = FinetuneSettings(
        lr=cfg["lr"],
        epochs=cfg["epochs"][regime],
        batch_size=cfg["batch_size"],
        seed=seed,
        lengths=Lengths(token=cfg["max_length"]),
    )
    torch.manual_seed(seed)
    task_model = finetune(
        model,
        load_tokenizer(str(tokenizer_dir)),
        TASK,
        records,
        settings,
        device=device,
        log=log,
        hook_for_steps=pruning_hook if kind else None,
    )
    reached = pruners[0].sparsity() if pruners else 0.0
    info = {
        "regime": regime,
        "variant": variant,
        "kind": kind,
        "scope": cfg["scope"] if kind else None,
        "target": sparsity,
        "sparsity": reached,
        "seed": seed,
        "train_languages": langs,
        "train_examples": len(records),
        "labels": task_model.labels,
        "max_length": cfg["max_length"],
    }
    encoder = task_model.encoder.cpu()
    files = {HEAD_FILE: save({k: v.cpu() for k, v in task_model.head.state_dict().items()})}
    if kind == "unstructured":
        masks = {f"{i}": (w != 0).to(torch.uint8) for i, w in enumerate(encoder_matrices(encoder))}
        files[MASKS_FILE] = save(masks)
    save_model(
        encoder,
        out_dir,
        extra={"ner": info, "provenance": provenance(identity, [model_dir, task_dir])},
        files=files,
    )
    return info


def load_tagger(model_dir):
    """A model that `finetune_sparse` wrote, as a TaskModel ready to predict, and its info."""
    from safetensors.torch import load

    from polyprune.model import load_model, read_checkpoint_file, read_checkpoint_meta
    from polyprune.tasks.heads import Lengths, TaskModel

    info = read_checkpoint_meta(model_dir)["ner"]
    encoder = load_model(model_dir)
    lengths = Lengths(token=info["max_length"])
    tagger = TaskModel(encoder, TASK, "token", info["labels"], lengths, seed=0)
    tagger.head.load_state_dict(load(read_checkpoint_file(model_dir, HEAD_FILE)))
    return tagger.eval(), info


def evaluate_sparse(
    model_dir, tokenizer_dir, tests_dir, test_sets: list[str], batch_size: int, device="cpu"
) -> tuple[dict, dict]:
    """F1 per language on each test set ({set: {lang: f1, "avg": mean}}) and the predicted tags
    of every sentence ({set: {lang: ["B-PER O ...", ...]}}, in test order)."""
    from polyprune.data import load_tokenizer
    from polyprune.tasks.finetune import predict, score

    tagger, _ = load_tagger(model_dir)
    tagger.to(device)
    tokenizer = load_tokenizer(str(tokenizer_dir))
    scores, predictions = {}, {}
    for name in test_sets:
        langs = sorted(path.stem for path in (Path(tests_dir) / name).glob("*.jsonl"))
        if not langs:
            raise DataError(f"{Path(tests_dir) / name}: no test records")
        scores[name], predictions[name] = {}, {}
        for lang in langs:
            records = read_records(tests_dir, name, lang)
            tags = predict(tagger, tokenizer, records, batch_size)
            scores[name][lang] = score(TASK, lang, records, tags)["f1"]
            predictions[name][lang] = [" ".join(t) for t in tags]
        scores[name]["avg"] = statistics.fmean(scores[name][lang] for lang in langs)
    return scores, predictions


# ---- analysis -----------------------------------------------------------------------------


def load_results(score_files: list) -> list[dict]:
    """The eval JSONs of the run, one per regime x variant x seed."""
    return [read_json(path, "second-study scores") for path in score_files]


def resource_sizes(settings: dict, task_dir) -> dict[str, dict[str, float]]:
    """Each language's resources: `ner_train`, its NER training sentences (the task's
    manifest), and `pretraining`, its pretraining data: the `sparse_finetuning.resources` table,
    or with the run's own base model the run's corpus sizes (Table 4); absent otherwise."""
    from polyprune.config import language_rows, sparse_resources_table

    counts = manifest(task_dir)["counts"]
    langs = counts["test"]
    sizes = {"ner_train": {lang: float(counts.get("train", {}).get(lang, 0)) for lang in langs}}
    table = settings["sparse_finetuning"].get("resources")
    if table:
        pretraining = sparse_resources_table(table)
    elif settings["sparse_finetuning"]["model"] == "base":
        rows = language_rows(settings)
        pretraining = {r["code"]: float(r["corpus"]) for r in rows if r["corpus"] is not None}
    else:
        pretraining = {}
    if all(lang in pretraining for lang in langs):
        sizes["pretraining"] = {lang: pretraining[lang] for lang in langs}
    return sizes


def language_groups(sizes: dict[str, float], n: int) -> dict[str, str]:
    """Each language's resource group: the languages sorted by size and cut into `n` groups of
    (nearly) equal count, named low, ..., high (with n = 3: low, mid, high)."""
    names = {1: ["all"], 2: ["low", "high"], 3: ["low", "mid", "high"]}.get(
        n, [f"q{i + 1}" for i in range(n)]
    )
    ordered = sorted(sizes, key=lambda lang: (sizes[lang], lang))
    return {lang: names[i * n // len(ordered)] for i, lang in enumerate(ordered)}


def seed_means(results: list[dict], test_set: str = "clean") -> dict:
    """{(regime, variant): {lang: (mean F1 over seeds, std, seeds)}} on one test set."""
    runs: dict[tuple, list[dict]] = {}
    for r in results:
        runs.setdefault((r["regime"], r["variant"]), []).append(r["test"][test_set])
    out = {}
    for key, seeds in runs.items():
        langs = [lang for lang in seeds[0] if lang != "avg"]
        out[key] = {lang: _mean_std([s[lang] for s in seeds]) for lang in langs}
    return out


def _mean_std(values: list[float]) -> tuple[float, float, int]:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), std, len(values)


def f1_by_group(results: list[dict], groups: dict[str, str]) -> list[dict]:
    """F1 against sparsity per language group: per regime, kind and sparsity (the dense model
    at 0 under every kind), the mean over the group's languages of each seed's F1, then mean
    and std over seeds."""
    rows = []
    by_run: dict[tuple, list[dict]] = {}
    for r in results:
        by_run.setdefault((r["regime"], r["variant"]), []).append(r["test"]["clean"])
    kinds = sorted({parse_sparse_variant(v)[0] for _, v in by_run if v != DENSE})
    for (regime, variant), seeds in sorted(by_run.items()):
        kind, sparsity = parse_sparse_variant(variant)
        for group in dict.fromkeys(sorted(groups.values(), key=_group_order)):
            members = [lang for lang, g in groups.items() if g == group]
            per_seed = [statistics.fmean(s[lang] for lang in members) for s in seeds]
            mean, std, n = _mean_std(per_seed)
            for shown in [kind] if kind else kinds or [DENSE]:
                rows.append(
                    {
                        "regime": regime,
                        "kind": shown,
                        "sparsity": sparsity,
                        "group": group,
                        "languages": len(members),
                        "f1": mean,
                        "std": std,
                        "seeds": n,
                    }
                )
    return rows


def _group_order(name: str) -> tuple:
    order = ["low", "mid", "high", "all"]
    return (order.index(name), name) if name in order else (len(order), name)


def language_deltas(results: list[dict], resources: dict[str, dict[str, float]]) -> list[dict]:
    """Per regime, sparse variant and language: F1 minus the dense model's F1 (seed means) and
    the language's resource sizes (`resources`: {measure: {lang: size}})."""
    means = seed_means(results)
    rows = []
    for (regime, variant), by_lang in sorted(means.items()):
        dense = means.get((regime, DENSE))
        if variant == DENSE or dense is None:
            continue
        kind, sparsity = parse_sparse_variant(variant)
        for lang, (f1, std, _) in sorted(by_lang.items()):
            rows.append(
                {
                    "regime": regime,
                    "kind": kind,
                    "sparsity": sparsity,
                    "language": lang,
                    "delta": f1 - dense[lang][0],
                    "spread": math.sqrt(std**2 + dense[lang][1] ** 2),
                    **{measure: sizes[lang] for measure, sizes in resources.items()},
                }
            )
    return rows


def delta_statistics(deltas: list[dict], measures: list[str], seed: int) -> list[dict]:
    """Per regime, kind and sparsity: the languages that gain and lose, and Pearson's r of the
    F1 change against log10 of each resource measure with its bootstrap 95% interval."""
    from polyprune.figures import pearson_with_ci

    groups: dict[tuple, list[dict]] = {}
    for row in deltas:
        groups.setdefault((row["regime"], row["kind"], row["sparsity"]), []).append(row)
    out = []
    for (regime, kind, sparsity), rows in sorted(groups.items()):
        stats = {
            "regime": regime,
            "kind": kind,
            "sparsity": sparsity,
            "mean_delta": statistics.fmean(r["delta"] for r in rows),
            "gain": " ".join(r["language"] for r in rows if r["delta"] > 0),
            "lose": " ".join(r["language"] for r in rows if r["delta"] < 0),
        }
        for measure in measures:
            sized = [row for row in rows if row[measure] > 0]  # log10: languages with data
            x = [math.log10(row[measure]) for row in sized]
            r, low, high = pearson_with_ci(x, [row["delta"] for row in sized], seed=seed)
            stats |= {f"r_{measure}": r, f"ci_low_{measure}": low, f"ci_high_{measure}": high}
        out.append(stats)
    return out


def robustness_rows(results: list[dict]) -> list[dict]:
    """Per regime, variant and test set: the mean F1 over languages (mean and std over seeds)
    and its change from the clean test set."""
    by_run: dict[tuple, list[dict]] = {}
    for r in results:
        by_run.setdefault((r["regime"], r["variant"]), []).append(r["test"])
    rows = []
    for (regime, variant), seeds in sorted(by_run.items()):
        clean = statistics.fmean(s["clean"]["avg"] for s in seeds)
        for test_set in seeds[0]:
            mean, std, n = _mean_std([s[test_set]["avg"] for s in seeds])
            rows.append(
                {
                    "regime": regime,
                    "variant": variant,
                    "test_set": test_set,
                    "f1": mean,
                    "std": std,
                    "change": mean - clean,
                    "seeds": n,
                }
            )
    return rows


def exemplar_rows(predictions: dict[tuple, list[dict]]) -> list[dict]:
    """Pruning-identified exemplars per regime, sparse variant, test set and language: the share
    of sentences whose modal tags over the variant's seeds differ from the dense seeds' modal
    tags. `predictions`: {(regime, variant): [one predictions JSON per seed]}."""
    rows = []
    for (regime, variant), seeds in sorted(predictions.items()):
        dense = predictions.get((regime, DENSE))
        if variant == DENSE or dense is None:
            continue
        for test_set, by_lang in seeds[0].items():
            for lang in by_lang:
                found = robustness.exemplars(
                    [d[test_set][lang] for d in dense], [s[test_set][lang] for s in seeds]
                )
                total = len(by_lang[lang])
                rows.append(
                    {
                        "regime": regime,
                        "variant": variant,
                        "test_set": test_set,
                        "language": lang,
                        "exemplars": len(found),
                        "sentences": total,
                        "share": len(found) / total if total else float("nan"),
                    }
                )
    return rows
