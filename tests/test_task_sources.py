"""Task sources read through local snapshots written in the hub's own formats (no network)."""

import json
import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from polyprune.errors import ConfigError, DataError
from polyprune.tasks.pipeline import read_records, write_records
from polyprune.tasks.sources import (
    TaskDataError,
    TaskSource,
    describe_origin,
    hub_split,
    load_task_split,
    task_languages,
)
from polyprune.tasks.spec import LABELS

# A feature as the hub stores it: (arrow type, the `huggingface` parquet metadata that datasets 2.x
# wrote at the parquet conversion, the dataset card's YAML).


def _value(dtype):
    return {"dtype": dtype, "_type": "Value"}


STRING = (pa.string(), _value("string"), {"dtype": "string"})
INT64 = (pa.int64(), _value("int64"), {"dtype": "int64"})
STRINGS = (
    pa.list_(pa.string()),
    {"feature": _value("string"), "_type": "Sequence"},
    {"sequence": "string"},
)
INTS = (
    pa.list_(pa.int64()),
    {"feature": _value("int64"), "_type": "Sequence"},
    {"sequence": "int64"},
)
ANSWERS = (
    pa.struct([("answer_start", pa.list_(pa.int32())), ("text", pa.list_(pa.string()))]),
    {"feature": {"answer_start": _value("int32"), "text": _value("string")}, "_type": "Sequence"},
    {"sequence": [{"name": "answer_start", "dtype": "int32"}, {"name": "text", "dtype": "string"}]},
)


def _yaml_names(names):
    return {"class_label": {"names": {str(i): name for i, name in enumerate(names)}}}


def class_label(names):
    return (
        pa.int64(),
        {"names": list(names), "_type": "ClassLabel"},
        {"dtype": _yaml_names(names)},
    )


def class_labels(names):
    legacy = {"feature": {"names": list(names), "_type": "ClassLabel"}, "_type": "Sequence"}
    return (pa.list_(pa.int64()), legacy, {"sequence": _yaml_names(names)})


def write_parquet(path, features, rows):
    columns = {name: pa.array([r[name] for r in rows], type=f[0]) for name, f in features.items()}
    meta = {"info": {"features": {name: f[1] for name, f in features.items()}}}
    table = pa.table(columns).replace_schema_metadata({"huggingface": json.dumps(meta)})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def write_repo(root, repo, configs):
    """A snapshot laid out as the hub's parquet conversions (README.md, <config>/<split>-*)."""
    infos, card_configs = [], []
    for config, (features, splits) in configs.items():
        infos.append(
            {
                "config_name": config,
                "features": [{"name": name, **f[2]} for name, f in features.items()],
                "splits": [
                    {"name": split, "num_bytes": 0, "num_examples": len(rows)}
                    for split, rows in splits.items()
                ],
            }
        )
        card_configs.append(
            {
                "config_name": config,
                "data_files": [{"split": s, "path": f"{config}/{s}-*"} for s in splits],
            }
        )
        for split, rows in splits.items():
            write_parquet(root / repo / config / f"{split}-00000-of-00001.parquet", features, rows)
    card = {"dataset_info": infos, "configs": card_configs}
    text = yaml.safe_dump(card, sort_keys=False, allow_unicode=True)
    (root / repo / "README.md").write_text(f"---\n{text}---\n# Dataset Card\n")


PAIR = {"sentence1": STRING, "sentence2": STRING, "label": STRING}
XNLI = {"language": STRING, "sentence1": STRING, "sentence2": STRING, "gold_label": STRING}
FB_XNLI = {"premise": STRING, "hypothesis": STRING, "label": class_label(LABELS["xnli"])}
UDPOS = {"tokens": STRINGS, "pos_tags": class_labels(LABELS["udpos"])}
PANX = {"tokens": STRINGS, "ner_tags": class_labels(LABELS["panx"]), "langs": STRINGS}
QA = {"id": STRING, "title": STRING, "context": STRING, "question": STRING, "answers": ANSWERS}
XQUAD = {"id": STRING, "context": STRING, "question": STRING, "answers": ANSWERS}
MLQA_TT = {"context": STRING, "question": STRING, "answers": ANSWERS, "id": STRING}
BITEXT = {n: STRING for n in ("source_sentence", "target_sentence", "source_lang", "target_lang")}


def qa_row(qid, context, question, starts, texts, title="T"):
    answers = {"answer_start": starts, "text": texts}
    return {"id": qid, "title": title, "context": context, "question": question, "answers": answers}


def pair_row(s1, s2, label):
    return {"sentence1": s1, "sentence2": s2, "label": label}


def untitled(row):
    return {k: v for k, v in row.items() if k != "title"}


def xnli_row(lang, s1, s2, label):
    return {"language": lang, "sentence1": s1, "sentence2": s2, "gold_label": label}


def bitext(src, tgt, src_id, tgt_id):
    ids = {"source_lang": src_id, "target_lang": tgt_id}
    return {"source_sentence": src, "target_sentence": tgt, **ids}


XTREME = {
    "MLQA.de.de": (
        QA,
        {
            "test": [qa_row("m1", "Köln liegt am Rhein.", "Woran?", [13], ["Rhein"])],
            "validation": [qa_row("m0", "Ja.", "Nein?", [0], ["Ja"])],
        },
    ),
    "PAN-X.de": (
        PANX,
        {
            "train": [{"tokens": ["Angela", "Merkel"], "ner_tags": [1, 2], "langs": ["de"] * 2}],
            "validation": [{"tokens": ["in", "Bonn"], "ner_tags": [0, 5], "langs": ["de"] * 2}],
            "test": [{"tokens": ["die", "UNO"], "ner_tags": [0, 3], "langs": ["de"] * 2}],
        },
    ),
    "PAWS-X.de": (
        PAIR,
        {
            "train": [pair_row("A ist B.", "B ist A.", "0")],
            "validation": [pair_row("C.", "C!", "1")],
            "test": [pair_row("D.", "E.", "0"), pair_row("F.", "F.", "1")],
        },
    ),
    "PAWS-X.en": (PAIR, {"train": [pair_row("A is B.", "B is A.", "1")]}),
    "SQuAD": (
        QA,
        {
            "train": [qa_row("s1", "Paris is in France.", "Where?", [12], ["France"])],
            "validation": [qa_row("s2", "It rains.", "What?", [3, 3], ["rains", "rains"])],
        },
    ),
    "XNLI": (
        XNLI,
        {
            "validation": [
                xnli_row("de", "Er schläft.", "Er ruht.", "entailment"),
                xnli_row("en", "He sleeps.", "He runs.", "contradiction"),
            ],
            "test": [
                xnli_row("en", "A.", "B.", "neutral"),
                xnli_row("de", "C.", "D.", "contradictory"),
            ],
        },
    ),
    "XQuAD.de": (
        XQUAD,
        {"validation": [untitled(qa_row("x1", "Ein Haus.", "Was?", [4], ["Haus"]))]},
    ),
    "bucc18.de": (
        BITEXT,
        {
            "validation": [bitext("Hallo.", "Hello.", "de-000000001", "en-000000007")],
            "test": [
                bitext("Ja.", "Yes.", "de-000000002", "en-000000003"),
                bitext("Nein.", "No.", "de-000000005", "en-000000004"),
            ],
        },
    ),
    "tatoeba.deu": (
        BITEXT,
        {"validation": [bitext("Ich bin hier.\n", "I am here.\n", "deu", "eng")]},
    ),
    "tydiqa": (
        QA,
        {
            "train": [
                qa_row("english-123-0", "Ice is cold.", "How?", [7], ["cold"]),
                qa_row("arabic-456-0", "الماء", "ما؟", [0], ["الماء"]),
            ],
            "validation": [
                qa_row("arabic--789-1", "نعم", "هل؟", [0], ["نعم"]),
                qa_row("english-5-0", "Sun is hot.", "How?", [7], ["hot"]),
            ],
        },
    ),
    "udpos.English": (UDPOS, {"train": [{"tokens": ["Dogs", "bark"], "pos_tags": [7, 15]}]}),
    "udpos.German": (
        UDPOS,
        {
            "train": [{"tokens": ["Hunde", "bellen", "."], "pos_tags": [7, 15, 12]}],
            "validation": [{"tokens": ["Ja"], "pos_tags": [6]}],
            "test": [{"tokens": ["Der", "Hund"], "pos_tags": [5, 7]}],
        },
    ),
}
FACEBOOK_XNLI = {
    "de": (
        FB_XNLI,
        {
            "train": [{"premise": "Es regnet.", "hypothesis": "Es ist nass.", "label": 0}],
            "validation": [{"premise": "X.", "hypothesis": "Y.", "label": 1}],
            "test": [{"premise": "X.", "hypothesis": "Z.", "label": 2}],
        },
    ),
    "en": (FB_XNLI, {"train": [{"premise": "It rains.", "hypothesis": "It's dry.", "label": 2}]}),
}
FACEBOOK_MLQA = {
    "mlqa-translate-train.de": (
        MLQA_TT,
        {
            "train": [qa_row("t1", "Paris ist in Frankreich.", "Wo?", [12], ["Frankreich"])],
            "validation": [qa_row("t2", "Es regnet.", "Was?", [3], ["regnet"])],
        },
    ),
}


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    root = tmp_path_factory.mktemp("snapshots")
    write_repo(root, "google/xtreme", XTREME)
    write_repo(root, "facebook/xnli", FACEBOOK_XNLI)
    write_repo(root, "facebook/mlqa", FACEBOOK_MLQA)
    return root


@pytest.fixture(scope="module")
def local(snapshots, tmp_path_factory):
    return TaskSource("local", local_root=snapshots, cache_dir=tmp_path_factory.mktemp("cache"))


def pair(i, lang, s1, s2, label):
    return {"id": f"{lang}-{i}", "lang": lang, "sentence1": s1, "sentence2": s2, "label": label}


def tagged(i, lang, tokens, tags):
    return {"id": f"{lang}-{i}", "lang": lang, "tokens": tokens, "tags": tags}


def qa(qid, lang, context, question, starts, texts):
    answers = {"text": texts, "answer_start": starts}
    return {"id": qid, "lang": lang, "context": context, "question": question, "answers": answers}


def mined(sid, side, text, gold):
    return {"id": sid, "lang": "de", "side": side, "text": text, "gold": gold}


EXPECTED = {
    ("xnli", "train", "en"): [pair(0, "en", "It rains.", "It's dry.", "contradiction")],
    ("xnli", "train", "de"): [pair(0, "de", "Es regnet.", "Es ist nass.", "entailment")],
    ("xnli", "validation", "de"): [pair(0, "de", "Er schläft.", "Er ruht.", "entailment")],
    ("xnli", "validation", "en"): [pair(0, "en", "He sleeps.", "He runs.", "contradiction")],
    ("xnli", "test", "de"): [pair(0, "de", "C.", "D.", "contradiction")],
    ("pawsx", "train", "en"): [pair(0, "en", "A is B.", "B is A.", "paraphrase")],
    ("pawsx", "train", "de"): [pair(0, "de", "A ist B.", "B ist A.", "different")],
    ("pawsx", "validation", "de"): [pair(0, "de", "C.", "C!", "paraphrase")],
    ("pawsx", "test", "de"): [
        pair(0, "de", "D.", "E.", "different"),
        pair(1, "de", "F.", "F.", "paraphrase"),
    ],
    ("udpos", "train", "en"): [tagged(0, "en", ["Dogs", "bark"], ["NOUN", "VERB"])],
    ("udpos", "train", "de"): [
        tagged(0, "de", ["Hunde", "bellen", "."], ["NOUN", "VERB", "PUNCT"])
    ],
    ("udpos", "validation", "de"): [tagged(0, "de", ["Ja"], ["INTJ"])],
    ("udpos", "test", "de"): [tagged(0, "de", ["Der", "Hund"], ["DET", "NOUN"])],
    ("panx", "train", "de"): [tagged(0, "de", ["Angela", "Merkel"], ["B-PER", "I-PER"])],
    ("panx", "validation", "de"): [tagged(0, "de", ["in", "Bonn"], ["O", "B-LOC"])],
    ("panx", "test", "de"): [tagged(0, "de", ["die", "UNO"], ["O", "B-ORG"])],
    ("squad", "train", "en"): [qa("s1", "en", "Paris is in France.", "Where?", [12], ["France"])],
    ("squad", "validation", "en"): [
        qa("s2", "en", "It rains.", "What?", [3, 3], ["rains", "rains"])
    ],
    ("squad", "train", "de"): [
        qa("t1", "de", "Paris ist in Frankreich.", "Wo?", [12], ["Frankreich"])
    ],
    ("xquad", "test", "de"): [qa("x1", "de", "Ein Haus.", "Was?", [4], ["Haus"])],
    ("mlqa", "test", "de"): [qa("m1", "de", "Köln liegt am Rhein.", "Woran?", [13], ["Rhein"])],
    ("tydiqa", "train", "en"): [qa("english-123-0", "en", "Ice is cold.", "How?", [7], ["cold"])],
    ("tydiqa", "validation", "en"): [qa("english-5-0", "en", "Sun is hot.", "How?", [7], ["hot"])],
    ("tydiqa", "test", "ar"): [qa("arabic--789-1", "ar", "نعم", "هل؟", [0], ["نعم"])],
    ("bucc", "validation", "de"): [
        mined("de-000000001", "source", "Hallo.", "en-000000007"),
        mined("en-000000007", "target", "Hello.", "de-000000001"),
    ],
    ("bucc", "test", "de"): [
        mined("de-000000002", "source", "Ja.", "en-000000003"),
        mined("de-000000005", "source", "Nein.", "en-000000004"),
        mined("en-000000003", "target", "Yes.", "de-000000002"),
        mined("en-000000004", "target", "No.", "de-000000005"),
    ],
    ("tatoeba", "test", "de"): [
        {"id": "de-0", "lang": "de", "source": "Ich bin hier.", "target": "I am here."}
    ],
}


@pytest.mark.parametrize("task, split, lang", list(EXPECTED), ids="-".join)
def test_every_task_loads_from_a_local_snapshot_in_hub_format(local, task, split, lang):
    assert load_task_split(task, split, lang, local) == EXPECTED[(task, split, lang)]


def test_xtreme_language_lists():
    hub = TaskSource("hub")
    sizes = dict(
        xnli=15, pawsx=7, udpos=33, panx=40, xquad=11, mlqa=7, tydiqa=9, bucc=4, tatoeba=36
    )
    assert {task: len(task_languages(task, "test", hub)) for task in sizes} == sizes


def test_training_languages_per_mode():
    hub = TaskSource("hub")
    assert task_languages("xnli", "train", hub) == ["en"]
    assert len(task_languages("xnli", "train", hub, "translate-train-all")) == 15
    pos = task_languages("udpos", "train", hub, "translate-train-all")
    assert len(pos) == 30 and not {"th", "tl", "yo"} & set(pos)
    assert "kk" not in task_languages("udpos", "validation", hub)
    squad = task_languages("squad", "train", hub, "translate-train-all")
    assert squad == ["en", "ar", "de", "es", "hi", "vi", "zh"]
    assert task_languages("squad", "validation", hub, "translate-train-all") == ["en"]
    assert task_languages("tydiqa", "train", hub, "translate-train-all") == ["en"]
    assert task_languages("xquad", "train", hub) == []
    assert task_languages("tatoeba", "validation", hub) == []


def test_language_subsets_keep_the_source_language():
    source = TaskSource.from_config({"source": "hub", "languages": {"xnli": ["zh", "de"]}})
    assert task_languages("xnli", "test", source) == ["de", "en", "zh"]
    with pytest.raises(ConfigError, match="not an XTREME language"):
        TaskSource.from_config({"source": "hub", "languages": {"pawsx": ["sw"]}})


def test_config_block_overrides_hub_datasets():
    source = TaskSource.from_config(
        {"source": "hub", "hub": {"mlqa": {"repo": "mirror/mlqa", "revision": "abc"}}}
    )
    assert source.datasets["mlqa"].repo == "mirror/mlqa"
    assert source.datasets["xtreme"].revision == "a357451849b1356ba7ebfe0715b938be15422c30"
    with pytest.raises(ConfigError, match="synthetic"):
        TaskSource.from_config({"source": "synthetic"})


def test_hub_splits_follow_xtreme():
    assert hub_split("udpos", "test", "de").config == "udpos.German"
    assert hub_split("mlqa", "test", "hi").config == "MLQA.hi.hi"
    assert hub_split("tatoeba", "test", "fa").config == "tatoeba.pes"
    assert hub_split("xquad", "test", "th").split == "validation"
    tydiqa = hub_split("tydiqa", "test", "sw")
    assert (tydiqa.config, tydiqa.split, tydiqa.language) == ("tydiqa", "validation", "sw")
    origin = describe_origin("panx", "test", "de", TaskSource("hub"))
    expected = "hf://datasets/google/xtreme@a357451849b1356ba7ebfe0715b938be15422c30"
    assert origin == f"{expected} (config 'PAN-X.de', split 'test')"
    with pytest.raises(ValueError, match="no train data"):
        hub_split("pawsx", "train", "sw")


def test_hub_without_a_revision_says_how_to_pin_one():
    with pytest.raises(TaskDataError, match=r"tasks\.hub\.mlqa\.revision is required"):
        load_task_split("squad", "train", "de", TaskSource("hub"))


def test_hub_unreachable_is_a_clear_error(monkeypatch, tmp_path):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    source = TaskSource("hub", cache_dir=tmp_path)
    with pytest.raises(TaskDataError, match=r"hf://datasets/google/xtreme@a357451.*cannot load"):
        load_task_split("panx", "test", "de", source)


def one_config_snapshot(root, config, features, rows, split):
    write_repo(root, "google/xtreme", {config: (features, {split: rows})})
    return TaskSource("local", local_root=root, cache_dir=root / "cache")


# fmt: off
MALFORMED = {
    "missing column": (
        "PAWS-X.de", {"sentence1": STRING, "sentence2": STRING},
        [{"sentence1": "a", "sentence2": "b"}],
        ("pawsx", "test", "de"), r"missing column\(s\) \['label'\]",
    ),
    "bad label": (
        "PAWS-X.de", PAIR, [pair_row("a", "b", "0"), pair_row("a", "b", "2")],
        ("pawsx", "test", "de"), r"row 1: field 'label' should be one of \['0', '1'\], got '2'",
    ),
    "empty split": (
        "PAWS-X.de", PAIR, [], ("pawsx", "test", "de"), "the split is empty",
    ),
    "wrong type": (
        "PAWS-X.de", {**PAIR, "sentence1": INT64}, [{**pair_row("a", "b", "0"), "sentence1": 7}],
        ("pawsx", "test", "de"), "row 0: field 'sentence1' should be a string, got 7",
    ),
    "tags without class names": (
        "PAN-X.de", {"tokens": STRINGS, "ner_tags": INTS}, [{"tokens": ["a"], "ner_tags": [0]}],
        ("panx", "test", "de"), "column 'ner_tags' should be a ClassLabel",
    ),
    "tags and tokens differ in length": (
        "udpos.German", UDPOS, [{"tokens": ["a", "b"], "pos_tags": [0]}],
        ("udpos", "test", "de"), "field 'pos_tags' should be 2 tags",
    ),
    "answers without text": (
        "XQuAD.de", XQUAD,
        [untitled(qa_row("q", "c", "q", [0], [None]))],
        ("xquad", "test", "de"), "field 'answers.text' should be a list of str",
    ),
    "language absent": (
        "XNLI", XNLI, [xnli_row("en", "a", "b", "neutral")],
        ("xnli", "test", "de"), "no records for language 'de'",
    ),
    "config absent": (
        "PAN-X.fr", PANX, [{"tokens": ["a"], "ner_tags": [0], "langs": ["fr"]}],
        ("panx", "test", "de"), "cannot load .*PAN-X.de",
    ),
}
# fmt: on


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_data_names_the_file_and_the_field(tmp_path, case):
    config, features, rows, (task, split, lang), message = MALFORMED[case]
    hub = hub_split(task, split, lang)
    source = one_config_snapshot(tmp_path, config, features, rows, hub.split)
    with pytest.raises(TaskDataError, match=message) as error:
        load_task_split(task, split, lang, source)
    assert str(tmp_path / "google" / "xtreme") in str(error.value)


def test_a_missing_split_lists_the_splits_there(tmp_path):
    row = {"tokens": ["a"], "ner_tags": [0], "langs": ["de"]}
    source = one_config_snapshot(tmp_path, "PAN-X.de", PANX, [row], "test")
    with pytest.raises(TaskDataError, match=r"split 'validation'\): no such split; .*\['test'\]"):
        load_task_split("panx", "validation", "de", source)


@pytest.mark.parametrize(
    ("damage", "line"),
    [(b'{"text": "cut', 2), (b"\xff\xfe\x00", 2), (b"[1, 2]", 2), (b"", 2)],
)
def test_a_damaged_task_file_names_the_file_and_line(tmp_path, damage, line):
    path = tmp_path / "xnli" / "test" / "qaa.jsonl"
    write_records(path, [{"text": "one"}, {"text": "two"}, {"text": "three"}])
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + damage + b"\n" + lines[2])
    with pytest.raises(DataError) as info:
        read_records(tmp_path / "xnli", "test", "qaa")
    assert str(info.value).startswith(f"{path}, line {line}: ")
