"""The fine-tuning stage's steps, from files to files: task preparation, one grid point, the
selection of a grid point, and retrieval."""

from __future__ import annotations

import json
from pathlib import Path

from polyprune.errors import DataError
from polyprune.io import atomic_dir, read_json
from polyprune.provenance import provenance
from polyprune.tasks.spec import LABELS, PRIMARY_METRIC, SPLITS, TASK_TYPES, evaluated_by

MANIFEST = "manifest.json"


# ---- task data --------------------------------------------------------------------------------


def prepare_task(
    task: str, tasks_cfg: dict, world_cfg: dict | None, out_dir, identity: dict, study: list[str]
):
    """Write a task's normalised records (docs/tasks.md) and its manifest, for the languages of
    the study (`study`): the hub's language codes are mapped onto the study's (e.g. XTREME's
    zh onto CC-100's zh-Hans, `tasks.language_codes`), and languages outside it are dropped and
    listed in the manifest. With `tasks.train_share.<task>`, each language but the source keeps
    that share of its training records (the first ones: the translate-train-all data)."""
    if tasks_cfg["source"] == "synthetic":
        from polyprune.synth import World

        world = World.from_config({**world_cfg, "tasks": tasks_cfg.get("sizes", {})})
        source_lang = world.source
        langs = {split: world.task_languages(task, split) for split in SPLITS}

        def load(split, lang):
            return world.task_records(task, split, lang)

        origin = f"synthetic world (seed {world_cfg['seed']})"
    else:
        from polyprune.tasks import sources

        source = sources.TaskSource.from_config(tasks_cfg)
        source_lang = sources.SOURCE_LANG
        mode = "translate-train-all"  # the widest: zero-shot reads the source language's file
        rename = study_codes(tasks_cfg.get("language_codes"))
        langs = {
            split: [
                rename.get(lang, lang) for lang in sources.task_languages(task, split, source, mode)
            ]
            for split in SPLITS
        }
        hub_code = {ours: theirs for theirs, ours in rename.items()}

        def load(split, lang):
            records = sources.load_task_split(task, split, hub_code.get(lang, lang), source)
            return [{**r, "lang": lang} for r in records]

        origin = {
            f"{split}/{lang}": sources.describe_origin(task, split, lang, source)
            for split, ls in langs.items()
            for lang in ls
        }
    dropped = sorted({lang for ls in langs.values() for lang in ls if lang not in study})
    langs = {split: [lang for lang in ls if lang in study] for split, ls in langs.items()}
    share = tasks_cfg.get("train_share", {}).get(task, 1.0)
    counts = {}
    with atomic_dir(out_dir) as tmp:
        for split, split_langs in langs.items():
            for lang in split_langs:
                records = load(split, lang)
                if split == "train" and lang != source_lang:
                    records = records[: round(share * len(records))]
                write_records(tmp / split / f"{lang}.jsonl", records)
                counts.setdefault(split, {})[lang] = len(records)
        manifest = {
            "task": task,
            "type": TASK_TYPES[task],
            "labels": list(LABELS.get(task, ())),
            "source_lang": source_lang,
            "splits": {split: ls for split, ls in langs.items() if ls},
            "counts": counts,
            "train_share": share,
            "dropped_languages": dropped,
            "origin": origin,
            "provenance": provenance(identity),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))


def study_codes(table: str | None) -> dict[str, str]:
    """XTREME's language codes -> the study's (CC-100's), from the table's `xtreme` column."""
    if not table:
        return {}
    import csv

    from polyprune.config import ROOT

    path = Path(table) if Path(table).is_absolute() else ROOT / table
    with open(path, newline="") as fh:
        rows = csv.DictReader(fh, delimiter="\t")
        return {r["xtreme"]: r["code"] for r in rows if r["xtreme"] and r["xtreme"] != r["code"]}


def write_records(path: Path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_records(task_dir, split: str, lang: str) -> list[dict]:
    path = Path(task_dir) / split / f"{lang}.jsonl"
    try:
        with open(path, "rb") as fh:
            return [_record(line, path, number) for number, line in enumerate(fh, 1)]
    except OSError as e:
        raise DataError(f"{path}: unreadable task data ({e})") from e


def _record(line: bytes, path: Path, number: int) -> dict:
    try:
        record = json.loads(line)
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise DataError(f"{path}, line {number}: not a JSON record ({e})") from e
    if not isinstance(record, dict):
        raise DataError(f"{path}, line {number}: not a JSON object")
    return record


def manifest(task_dir) -> dict:
    return read_json(Path(task_dir) / MANIFEST, "task manifest")


def split_records(task_dir, split: str, langs=None) -> dict[str, list[dict]]:
    m = manifest(task_dir)
    chosen = m["splits"].get(split, []) if langs is None else langs
    return {lang: read_records(task_dir, split, lang) for lang in chosen}


# ---- fine-tuning ------------------------------------------------------------------------------


def finetune_point(
    model_dir,
    tokenizer_dir,
    task_dirs: dict,
    train_set: str,
    mode: str,
    lr: float,
    epochs: int,
    seed: int,
    ft_cfg: dict,
    identity: dict,
    device: str = "cpu",
    log=print,
) -> dict:
    """Fine-tune a cell's model on `train_set` at one grid point (lr, epochs) in `mode` with
    `seed` (head initialisation, dropout, batch order); score it on the validation languages
    that selection reads (`ft_cfg["selection"][mode]`: the source language or all) and on the
    test sets of the tasks it serves."""
    import torch

    from polyprune.data import load_tokenizer
    from polyprune.model import load_model
    from polyprune.tasks.finetune import FinetuneSettings, evaluate, finetune
    from polyprune.tasks.heads import Lengths

    torch.manual_seed(seed)
    train_dir = task_dirs[train_set]
    m = manifest(train_dir)
    train_langs = [m["source_lang"]] if mode == "zero-shot" else m["splits"]["train"]
    records = [r for lang in train_langs for r in read_records(train_dir, "train", lang)]
    settings = FinetuneSettings(
        lr=lr,
        epochs=epochs,
        batch_size=ft_cfg["batch_size"],
        seed=seed,
        lengths=Lengths(**ft_cfg["max_length"]),
    )
    tokenizer = load_tokenizer(str(tokenizer_dir))
    task_model = finetune(
        load_model(model_dir), tokenizer, train_set, records, settings, device=device, log=log
    )
    tests = {
        task: split_records(task_dirs[task], "test") for task in evaluated_by(train_set, task_dirs)
    }
    selected_on = [m["source_lang"]] if ft_cfg["selection"][mode] == "source" else None
    validation = split_records(train_dir, "validation", selected_on)
    scores = evaluate(task_model, tokenizer, validation, tests)
    inputs = [model_dir, *(task_dirs[t] for t in [train_set, *tests])]
    return {
        "train_set": train_set,
        "mode": mode,
        "lr": lr,
        "epochs": epochs,
        "seed": seed,
        "train_languages": train_langs,
        "train_examples": len(records),
        **scores,
        "provenance": provenance(identity, inputs),
    }


def select_point(point_files: list, selection: str, source_lang: str, identity: dict) -> dict:
    """The grid point with the best validation score (the task type's primary metric): on the
    source language only (`source`) or averaged over every validation language (`all`)."""
    points = [read_json(p, "fine-tuning result") for p in point_files]
    metric = PRIMARY_METRIC[TASK_TYPES[points[0]["train_set"]]]

    def validation_score(point):
        scores = point["validation"]
        return scores[source_lang if selection == "source" else "avg"][metric]

    best = max(points, key=validation_score)
    return {
        "train_set": best["train_set"],
        "mode": best["mode"],
        "selection": {"on": selection, "metric": metric, "score": validation_score(best)},
        "lr": best["lr"],
        "epochs": best["epochs"],
        "grid": [
            {"lr": p["lr"], "epochs": p["epochs"], "validation": validation_score(p)}
            for p in points
        ],
        "validation": best["validation"],
        "test": best["test"],
        "provenance": provenance(identity, point_files),
    }


def retrieval_cell(
    model_dir,
    tokenizer_dir,
    task_dir,
    task: str,
    ft_cfg: dict,
    identity: dict,
    device: str = "cpu",
) -> dict:
    """BUCC or Tatoeba scores of a cell's model, without training."""
    from polyprune.data import load_tokenizer
    from polyprune.model import load_model
    from polyprune.tasks.retrieval import retrieval_scores

    m = manifest(task_dir)
    model = load_model(model_dir).to(device).eval()
    scores = retrieval_scores(
        model,
        load_tokenizer(str(tokenizer_dir)),
        task,
        split_records(task_dir, "test"),
        layer=ft_cfg["retrieval_layer"],
        batch_size=ft_cfg["eval_batch_size"],
        source_lang=m["source_lang"],
    )
    note = "hub bucc18 configs keep only gold pairs (no distractors): not comparable with BUCC"
    return {
        "task": task,
        "layer": ft_cfg["retrieval_layer"],
        "test": {task: scores},
        **({"note": note} if task == "bucc" and isinstance(m["origin"], dict) else {}),
        "provenance": provenance(identity, [model_dir, task_dir]),
    }
