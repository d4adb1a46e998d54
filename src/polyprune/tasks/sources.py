"""The real benchmark (XTREME and its training sets) from the hub or a local snapshot.

Every split comes back as the normalised records of docs/tasks.md. docs/task-sources.md says which
dataset, config and split serve each task, split and language, and what the hub lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from polyprune.errors import ConfigError, DataError
from polyprune.tasks.spec import LABELS, MODES, SPLITS, TASK_TYPES

if TYPE_CHECKING:
    from datasets import Dataset

SOURCE_LANG = "en"

# The languages XTREME evaluates (Hu et al. 2020, Table 1; google-research/xtreme scripts).
XNLI_LANGS = (
    "ar",
    "bg",
    "de",
    "el",
    "en",
    "es",
    "fr",
    "hi",
    "ru",
    "sw",
    "th",
    "tr",
    "ur",
    "vi",
    "zh",
)
PAWSX_LANGS = ("de", "en", "es", "fr", "ja", "ko", "zh")
UDPOS_NAMES = {
    "af": "Afrikaans",
    "ar": "Arabic",
    "bg": "Bulgarian",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "et": "Estonian",
    "eu": "Basque",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "kk": "Kazakh",
    "ko": "Korean",
    "mr": "Marathi",
    "nl": "Dutch",
    "pt": "Portuguese",
    "ru": "Russian",
    "ta": "Tamil",
    "te": "Telugu",
    "th": "Thai",
    "tl": "Tagalog",
    "tr": "Turkish",
    "ur": "Urdu",
    "vi": "Vietnamese",
    "yo": "Yoruba",
    "zh": "Chinese",
}
PANX_LANGS = (
    "af",
    "ar",
    "bg",
    "bn",
    "de",
    "el",
    "en",
    "es",
    "et",
    "eu",
    "fa",
    "fi",
    "fr",
    "he",
    "hi",
    "hu",
    "id",
    "it",
    "ja",
    "jv",
    "ka",
    "kk",
    "ko",
    "ml",
    "mr",
    "ms",
    "my",
    "nl",
    "pt",
    "ru",
    "sw",
    "ta",
    "te",
    "th",
    "tl",
    "tr",
    "ur",
    "vi",
    "yo",
    "zh",
)
XQUAD_LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
MLQA_LANGS = ("ar", "de", "en", "es", "hi", "vi", "zh")
TYDIQA_PREFIXES = {
    "arabic": "ar",
    "bengali": "bn",
    "english": "en",
    "finnish": "fi",
    "indonesian": "id",
    "korean": "ko",
    "russian": "ru",
    "swahili": "sw",
    "telugu": "te",
}
BUCC_LANGS = ("de", "fr", "ru", "zh")
TATOEBA_ISO3 = {
    "af": "afr",
    "ar": "ara",
    "bg": "bul",
    "bn": "ben",
    "de": "deu",
    "el": "ell",
    "es": "spa",
    "et": "est",
    "eu": "eus",
    "fa": "pes",
    "fi": "fin",
    "fr": "fra",
    "he": "heb",
    "hi": "hin",
    "hu": "hun",
    "id": "ind",
    "it": "ita",
    "ja": "jpn",
    "jv": "jav",
    "ka": "kat",
    "kk": "kaz",
    "ko": "kor",
    "ml": "mal",
    "mr": "mar",
    "nl": "nld",
    "pt": "por",
    "ru": "rus",
    "sw": "swh",
    "ta": "tam",
    "te": "tel",
    "th": "tha",
    "tl": "tgl",
    "tr": "tur",
    "ur": "urd",
    "vi": "vie",
    "zh": "cmn",
}
# fmt: on
# UD v2.5 has no training treebank for these; Kazakh has a train but no dev set.
UDPOS_WITHOUT_TRAIN = {"th", "tl", "yo"}
UDPOS_WITHOUT_VALIDATION = {"kk", "th", "tl", "yo"}
# facebook/mlqa translate-train configs (SQuAD v1.1 machine-translated by the MLQA authors).
SQUAD_TRANSLATIONS = ("ar", "de", "es", "hi", "vi", "zh")

PAWSX_LABELS = {"0": "different", "1": "paraphrase"}
# XTREME's own preprocessing maps XNLI's "contradictory" spelling to "contradiction".
XNLI_LABEL_ALIASES = {"contradictory": "contradiction"}


class TaskDataError(DataError):
    """Task data that cannot be read or lacks the expected format; names the data and field."""


@dataclass(frozen=True)
class HubDataset:
    repo: str
    revision: str | None = None


# Commits from each repository's hub history: its parquet conversion, with the loading script gone
# (datasets >= 4 no longer runs scripts). facebook/mlqa had no merged parquet conversion to pin;
# docs/task-sources.md says where each sha comes from and how to check one.
DEFAULT_DATASETS = {
    "xtreme": HubDataset("google/xtreme", "a357451849b1356ba7ebfe0715b938be15422c30"),
    "xnli": HubDataset("facebook/xnli", "d0b69a6f999d31ecd5be9b61ea1be3040b66e69d"),
    "mlqa": HubDataset("facebook/mlqa", None),
}


@dataclass(frozen=True)
class TaskSource:
    """Where real task data comes from: the hub at pinned revisions, or local snapshots."""

    kind: str
    datasets: Mapping[str, HubDataset] = field(default_factory=lambda: dict(DEFAULT_DATASETS))
    local_root: Path | None = None
    languages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    cache_dir: Path | None = None

    def __post_init__(self):
        if self.kind not in ("hub", "local"):
            raise ConfigError(f"tasks.source must be 'hub' or 'local' here, got {self.kind!r}")
        if self.kind == "local" and self.local_root is None:
            raise ConfigError("tasks.source 'local' needs tasks.local_root")
        for task, langs in self.languages.items():
            unknown = sorted(set(langs) - set(_all_languages(task)))
            if unknown:
                raise ConfigError(f"tasks.languages.{task}: not an XTREME language: {unknown}")

    @classmethod
    def from_config(cls, block: Mapping) -> TaskSource:
        """Build from the config's `tasks:` block (docs/task-sources.md)."""
        hub = dict(DEFAULT_DATASETS)
        for key, entry in (block.get("hub") or {}).items():
            if key not in DEFAULT_DATASETS:
                raise ConfigError(f"tasks.hub.{key}: unknown dataset, expected {sorted(hub)}")
            hub[key] = HubDataset(entry.get("repo", hub[key].repo), entry.get("revision"))
        root, cache = block.get("local_root"), block.get("cache_dir")
        return cls(
            kind=block.get("source"),
            datasets=hub,
            local_root=Path(root) if root else None,
            languages={t: tuple(ls) for t, ls in (block.get("languages") or {}).items()},
            cache_dir=Path(cache) if cache else None,
        )


@dataclass(frozen=True)
class HubSplit:
    """One split of one hub config; `language` keeps only that language's rows when set."""

    dataset: str
    config: str
    split: str
    language: str | None = None


def _all_languages(task: str) -> tuple[str, ...]:
    if task not in TASK_TYPES:
        raise ValueError(f"unknown task {task!r}, expected one of {sorted(TASK_TYPES)}")
    return {
        "xnli": XNLI_LANGS,
        "pawsx": PAWSX_LANGS,
        "udpos": tuple(UDPOS_NAMES),
        "panx": PANX_LANGS,
        "squad": (SOURCE_LANG, *SQUAD_TRANSLATIONS),
        "xquad": XQUAD_LANGS,
        "mlqa": MLQA_LANGS,
        "tydiqa": tuple(TYDIQA_PREFIXES.values()),
        "bucc": BUCC_LANGS,
        "tatoeba": tuple(TATOEBA_ISO3),
    }[task]


def _available_languages(task: str, split: str, mode: str) -> tuple[str, ...]:
    """Languages with data for (task, split) in `mode`, before any per-task subset."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}, expected one of {MODES}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}, expected one of {SPLITS}")
    langs = _all_languages(task)
    if task in ("xquad", "mlqa", "tatoeba"):
        return langs if split == "test" else ()
    if task == "bucc":
        return langs if split != "train" else ()
    if task == "squad":
        if split == "test":
            return ()
        return langs if split == "train" and mode == "translate-train-all" else (SOURCE_LANG,)
    if task == "tydiqa" and split != "test":
        return (SOURCE_LANG,)
    if split == "train" and mode == "zero-shot":
        return (SOURCE_LANG,)
    if task == "udpos":
        missing = {"train": UDPOS_WITHOUT_TRAIN, "validation": UDPOS_WITHOUT_VALIDATION}
        return tuple(lang for lang in langs if lang not in missing.get(split, ()))
    return langs


def task_languages(task: str, split: str, source: TaskSource, mode: str = "zero-shot") -> list[str]:
    """Languages of (task, split) in `mode`, restricted to the source's per-task subset.

    The source language stays in every subset: training and model selection need it.
    """
    langs = _available_languages(task, split, mode)
    chosen = source.languages.get(task)
    if chosen is None:
        return list(langs)
    return [lang for lang in langs if lang in chosen or lang == SOURCE_LANG]


def hub_split(task: str, split: str, lang: str) -> HubSplit:
    """The hub dataset, config and split that serve (task, split, lang)."""
    if lang not in _available_languages(task, split, "translate-train-all"):
        raise ValueError(f"{task} has no {split} data for language {lang!r}")
    return _HUB_SPLITS[task](split, lang)


def _xnli_split(split: str, lang: str) -> HubSplit:
    if split == "train":
        return HubSplit("xnli", lang, "train")
    return HubSplit("xtreme", "XNLI", split, language=lang)


def _squad_split(split: str, lang: str) -> HubSplit:
    if lang == SOURCE_LANG:
        return HubSplit("xtreme", "SQuAD", split)
    return HubSplit("mlqa", f"mlqa-translate-train.{lang}", split)


def _tydiqa_split(split: str, lang: str) -> HubSplit:
    # TyDiQA-GoldP has no separate dev set per XTREME: its English dev file selects models.
    return HubSplit("xtreme", "tydiqa", "train" if split == "train" else "validation", lang)


_HUB_SPLITS: dict[str, Callable[[str, str], HubSplit]] = {
    "xnli": _xnli_split,
    "pawsx": lambda split, lang: HubSplit("xtreme", f"PAWS-X.{lang}", split),
    "udpos": lambda split, lang: HubSplit("xtreme", f"udpos.{UDPOS_NAMES[lang]}", split),
    "panx": lambda split, lang: HubSplit("xtreme", f"PAN-X.{lang}", split),
    "squad": _squad_split,
    "xquad": lambda split, lang: HubSplit("xtreme", f"XQuAD.{lang}", "validation"),
    "mlqa": lambda split, lang: HubSplit("xtreme", f"MLQA.{lang}.{lang}", "test"),
    "tydiqa": _tydiqa_split,
    # The hub keeps BUCC's sample gold as validation and its training gold as test, as XTREME.
    "bucc": lambda split, lang: HubSplit("xtreme", f"bucc18.{lang}", split),
    "tatoeba": lambda split, lang: HubSplit(
        "xtreme", f"tatoeba.{TATOEBA_ISO3[lang]}", "validation"
    ),
}


def describe_origin(task: str, split: str, lang: str, source: TaskSource) -> str:
    """One line naming the data behind (task, split, lang), for manifests and errors."""
    return _where(source, hub_split(task, split, lang))


def load_task_split(task: str, split: str, lang: str, source: TaskSource) -> list[dict]:
    """The normalised records (docs/tasks.md) of one task, split and language."""
    where_from = hub_split(task, split, lang)
    where = _where(source, where_from)
    rows = _read(source, where_from, where)
    if where_from.language is not None:
        rows = _keep_language(task, rows, where_from.language, where)
        if len(rows) == 0:
            raise TaskDataError(f"{where}: no records for language {lang!r}")
    return _NORMALISERS[(task, where_from.dataset)](rows, lang, where)


def _where(source: TaskSource, hub: HubSplit) -> str:
    dataset = source.datasets[hub.dataset]
    if source.kind == "local":
        base = str(source.local_root / dataset.repo)
    else:
        base = f"hf://datasets/{dataset.repo}@{dataset.revision}"
    return f"{base} (config {hub.config!r}, split {hub.split!r})"


def _read(source: TaskSource, hub: HubSplit, where: str) -> Dataset:
    from datasets import load_dataset_builder

    dataset = source.datasets[hub.dataset]
    if source.kind == "hub" and not dataset.revision:
        raise TaskDataError(
            f"{where}: tasks.hub.{hub.dataset}.revision is required: set it to a commit sha of "
            f"{dataset.repo} that holds parquet files and no loading script (see "
            f"https://huggingface.co/datasets/{dataset.repo}/commits/main), or use a local snapshot"
        )
    local = source.kind == "local"
    builder = _loading(
        where,
        load_dataset_builder,
        str(source.local_root / dataset.repo) if local else dataset.repo,
        name=hub.config,
        revision=None if local else dataset.revision,
        cache_dir=str(source.cache_dir) if source.cache_dir else None,
    )
    data_files = builder.config.data_files or {}
    if not data_files.get(hub.split):
        raise TaskDataError(f"{where}: no such split; the config has {sorted(data_files)}")
    if local:
        _check_rows(data_files[hub.split], where)
    _loading(where, builder.download_and_prepare)
    rows = _loading(where, builder.as_dataset, split=hub.split)
    if len(rows) == 0:
        raise TaskDataError(f"{where}: the split is empty")
    return rows


def _check_rows(files: list[str], where: str) -> None:
    """Name an empty local file here: datasets' parquet reader fails on it without saying why."""
    import pyarrow.parquet as pq

    for file in files:
        if _loading(where, pq.read_metadata, file).num_rows == 0:
            raise TaskDataError(f"{where}: {file} has no rows: the split is empty")


def _loading(where: str, call: Callable, *args, **kwargs):
    """Run a datasets/pyarrow call; any failure becomes one TaskDataError naming the data."""
    from datasets.exceptions import DatasetsError

    try:
        return call(*args, **kwargs)
    except (OSError, ValueError, TypeError, RuntimeError, DatasetsError) as e:
        reason = f"{e}: {e.__cause__}" if e.__cause__ else str(e)
        raise TaskDataError(f"{where}: cannot load ({reason})") from e


def _keep_language(task: str, rows: Dataset, lang: str, where: str) -> Dataset:
    if task == "xnli":
        _require(rows, ["language"], where)
        languages = rows["language"]
    else:  # tydiqa: the language is the id's prefix, as XTREME splits it
        _require(rows, ["id"], where)
        languages = [TYDIQA_PREFIXES.get(str(i).split("-")[0]) for i in rows["id"]]
    return rows.select([i for i, row_lang in enumerate(languages) if row_lang == lang])


def _require(rows: Dataset, columns: list[str], where: str) -> None:
    missing = [c for c in columns if c not in rows.column_names]
    if missing:
        raise TaskDataError(f"{where}: missing column(s) {missing}; has {rows.column_names}")


def _bad(where: str, index: int, name: str, expected: str, value) -> TaskDataError:
    return TaskDataError(
        f"{where}: row {index}: field {name!r} should be {expected}, got {value!r}"
    )


def _text(row: dict, name: str, where: str, index: int) -> str:
    value = row[name]
    if not isinstance(value, str):
        raise _bad(where, index, name, "a string", value)
    return value


def _list_of(kind: type, row_value, name: str, where: str, index: int) -> list:
    if not isinstance(row_value, list) or not all(isinstance(v, kind) for v in row_value):
        raise _bad(where, index, name, f"a list of {kind.__name__}", row_value)
    return row_value


def _label(value, mapping: Mapping, name: str, where: str, index: int) -> str:
    if value not in mapping:
        raise _bad(where, index, name, f"one of {sorted(mapping)}", value)
    return mapping[value]


def _class_names(rows: Dataset, name: str, labels, where: str) -> list[str]:
    """The class names of a ClassLabel column (or a list of ClassLabel), checked against labels."""
    _require(rows, [name], where)
    feature = rows.features[name]
    feature = getattr(feature, "feature", feature)
    names = getattr(feature, "names", None)
    if names is None:
        raise TaskDataError(f"{where}: column {name!r} should be a ClassLabel, got {feature}")
    unknown = sorted(set(names) - set(labels))
    if unknown:
        raise TaskDataError(f"{where}: column {name!r} has unknown class names {unknown}")
    return names


def _pairs(rows: Dataset, lang, where, first: str, second: str, label: str, labels) -> list[dict]:
    _require(rows, [first, second, label], where)
    return [
        {
            "id": f"{lang}-{i}",
            "lang": lang,
            "sentence1": _text(row, first, where, i),
            "sentence2": _text(row, second, where, i),
            "label": _label(row[label], labels, label, where, i),
        }
        for i, row in enumerate(rows)
    ]


def _pairs_from_xtreme_xnli(rows: Dataset, lang: str, where: str) -> list[dict]:
    labels = {label: label for label in LABELS["xnli"]} | XNLI_LABEL_ALIASES
    return _pairs(rows, lang, where, "sentence1", "sentence2", "gold_label", labels)


def _pairs_from_facebook_xnli(rows: Dataset, lang: str, where: str) -> list[dict]:
    names = dict(enumerate(_class_names(rows, "label", LABELS["xnli"], where)))
    return _pairs(rows, lang, where, "premise", "hypothesis", "label", names)


def _pairs_from_pawsx(rows: Dataset, lang: str, where: str) -> list[dict]:
    return _pairs(rows, lang, where, "sentence1", "sentence2", "label", PAWSX_LABELS)


def _tagger(tag_column: str, task: str):
    def normalise(rows: Dataset, lang: str, where: str) -> list[dict]:
        _require(rows, ["tokens"], where)
        names = dict(enumerate(_class_names(rows, tag_column, LABELS[task], where)))
        records = []
        for i, row in enumerate(rows):
            tokens = _list_of(str, row["tokens"], "tokens", where, i)
            tags = _list_of(int, row[tag_column], tag_column, where, i)
            if len(tags) != len(tokens):
                raise _bad(where, i, tag_column, f"{len(tokens)} tags (one per token)", tags)
            tags = [_label(tag, names, tag_column, where, i) for tag in tags]
            records.append({"id": f"{lang}-{i}", "lang": lang, "tokens": tokens, "tags": tags})
        return records

    return normalise


def _questions(rows: Dataset, lang: str, where: str) -> list[dict]:
    _require(rows, ["id", "context", "question", "answers"], where)
    return [
        {
            "id": _text(row, "id", where, i),
            "lang": lang,
            "context": _text(row, "context", where, i),
            "question": _text(row, "question", where, i),
            "answers": _answers(row["answers"], where, i),
        }
        for i, row in enumerate(rows)
    ]


def _answers(value, where: str, index: int) -> dict:
    if not isinstance(value, dict) or set(value) != {"text", "answer_start"}:
        raise _bad(where, index, "answers", "{'text': [...], 'answer_start': [...]}", value)
    texts = _list_of(str, value["text"], "answers.text", where, index)
    starts = _list_of(int, value["answer_start"], "answers.answer_start", where, index)
    if len(texts) != len(starts):
        raise _bad(where, index, "answers", "as many answer_start as text entries", value)
    return {"text": texts, "answer_start": starts}


def _mining(rows: Dataset, lang: str, where: str) -> list[dict]:
    """Both sides of BUCC's gold pairs; the hub's source_lang/target_lang hold sentence ids."""
    _require(rows, ["source_sentence", "target_sentence", "source_lang", "target_lang"], where)
    sides: dict[str, dict[str, dict]] = {"source": {}, "target": {}}
    for i, row in enumerate(rows):
        source_id = _text(row, "source_lang", where, i)
        target_id = _text(row, "target_lang", where, i)
        for side, own, other, text in (
            ("source", source_id, target_id, "source_sentence"),
            ("target", target_id, source_id, "target_sentence"),
        ):
            sentence = _text(row, text, where, i)
            record = {"id": own, "lang": lang, "side": side, "text": sentence, "gold": other}
            sides[side].setdefault(own, record)
    return [*sides["source"].values(), *sides["target"].values()]


def _retrieval(rows: Dataset, lang: str, where: str) -> list[dict]:
    _require(rows, ["source_sentence", "target_sentence"], where)
    # The hub's Tatoeba sentences keep their line ends; XTREME strips them too.
    return [
        {
            "id": f"{lang}-{i}",
            "lang": lang,
            "source": _text(row, "source_sentence", where, i).strip(),
            "target": _text(row, "target_sentence", where, i).strip(),
        }
        for i, row in enumerate(rows)
    ]


_NORMALISERS = {
    ("xnli", "xtreme"): _pairs_from_xtreme_xnli,
    ("xnli", "xnli"): _pairs_from_facebook_xnli,
    ("pawsx", "xtreme"): _pairs_from_pawsx,
    ("udpos", "xtreme"): _tagger("pos_tags", "udpos"),
    ("panx", "xtreme"): _tagger("ner_tags", "panx"),
    ("squad", "xtreme"): _questions,
    ("squad", "mlqa"): _questions,
    ("xquad", "xtreme"): _questions,
    ("mlqa", "xtreme"): _questions,
    ("tydiqa", "xtreme"): _questions,
    ("bucc", "xtreme"): _mining,
    ("tatoeba", "xtreme"): _retrieval,
}
