"""The demo world: determinism, corpus layout, and every task's records in the schemas of
docs/tasks.md."""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import subprocess
import sys

import pytest

from polyprune.synth import World
from polyprune.synth.concepts import CONTENT_CONCEPTS
from polyprune.synth.tasks import BUCC_GOLD_SHARE, SPLITS
from polyprune.tasks.spec import LABELS, TASK_TYPES

SIZES = {
    "xnli": {"train": 30, "validation": 12, "test": 12},
    "pawsx": {"train": 30, "validation": 12, "test": 12},
    "udpos": {"train": 20, "validation": 8, "test": 8},
    "panx": {"train": 20, "validation": 8, "test": 8},
    "squad": {"train": 20, "validation": 8},
    "xquad": {"test": 12},
    "mlqa": {"validation": 8, "test": 12},
    "tydiqa": {"train": 12, "validation": 8, "test": 8},
    "bucc": {"test": 20},
    "tatoeba": {"test": 15},
}
CONFIG = {
    "seed": 7,
    "source": "qaa",
    "bilingual_share": 0.1,
    "languages": {
        "qaa": {"name": "Aldoran", "family": "aldic", "corpus_sentences": 2000},
        "qab": {"name": "Belloran", "family": "aldic", "corpus_sentences": 500,
                "grammar": {"adjective": "post", "tense": "suffix", "agreement": True}},
        "qba": {"name": "Vetrash", "family": "vetric", "corpus_sentences": 1000},
        "qbc": {"name": "Kyrethi", "family": "vetric", "script": "greek",
                "corpus_sentences": 20, "grammar": {"plural": "no-numeral"}},
        "qca": {"name": "Sunekan", "family": "sunic", "corpus_sentences": 300},
    },
    "tasks": SIZES,
}  # fmt: skip
SENTENCE_END = re.compile(r"[.?](?= |$)")
CYRILLIC, GREEK = re.compile("[а-я]"), re.compile("[α-ω]")
LATIN = re.compile("[A-Za-z]+")


@pytest.fixture(scope="module")
def world() -> World:
    return World.from_config(CONFIG)


def task_splits():
    return [(task, split) for task, splits in SPLITS.items() for split in splits]


def meaning_id(record: dict) -> str:
    return record["id"].rsplit("-", 1)[0]


def test_languages_families_and_scripts(world):
    assert world.languages == list(CONFIG["languages"])
    assert world.source == "qaa"
    assert [world.family(code) for code in world.languages] == [
        "aldic", "aldic", "vetric", "vetric", "sunic",
    ]  # fmt: skip
    assert world.name("qbc") == "Kyrethi"
    assert world.profile("qaa")["order"] == "SVO" and world.profile("qba")["order"] == "SOV"
    assert world.profile("qab")["adjective"] == "post"
    assert CYRILLIC.search(" ".join(world.corpus_lines("qba")))
    assert GREEK.search(" ".join(world.corpus_lines("qbc")))


def test_private_use_codes_families_and_grammar_are_checked():
    def config(**language):
        bad = copy.deepcopy(CONFIG)
        bad["languages"]["qab"] = {**bad["languages"]["qab"], **language}
        return bad

    with pytest.raises(ValueError, match="private-use"):
        World.from_config({**CONFIG, "languages": {"eng": CONFIG["languages"]["qaa"]}})
    with pytest.raises(ValueError, match="family"):
        World.from_config(config(family="germanic"))
    with pytest.raises(ValueError, match="grammar"):
        World.from_config(config(grammar={"case": "ergative"}))
    with pytest.raises(ValueError, match="splits"):
        World.from_config({**CONFIG, "tasks": {"xquad": {"train": 5}}})
    with pytest.raises(ValueError, match="codeswitch_rate"):
        World.from_config({**CONFIG, "codeswitch_rate": 1.5})


def test_code_switching_mixes_source_words_into_other_languages():
    """Cyrillic text takes source-language (Latin) content words, with its own suffixes
    hyphenated; the source corpus and the task data stay as they were."""
    monolingual = {**CONFIG, "bilingual_share": 0.0}
    world = World.from_config(monolingual)
    switching = World.from_config({**monolingual, "codeswitch_rate": 0.3})
    source = switching.realiser("qaa").lang
    source_words = {source.spell(source.word(concept)) for concept in CONTENT_CONCEPTS}

    def latin_stems(lines) -> set[str]:
        words = " ".join(lines).replace(".", " ").split()
        return {w.split("-")[0].lower() for w in words if LATIN.fullmatch(w.split("-")[0])}

    plain = latin_stems(world.corpus_lines("qba")) & source_words
    mixed = latin_stems(switching.corpus_lines("qba")) & source_words
    assert len(mixed) > 3 * len(plain) + 10
    assert list(switching.corpus_lines("qaa")) == list(world.corpus_lines("qaa"))
    task = ("xnli", "test", "qba")
    assert switching.task_records(*task) == world.task_records(*task)


def test_same_seed_same_bytes_in_any_call_order(world):
    other = World.from_config(copy.deepcopy(CONFIG))
    calls = [("xnli", "test", "qbc"), ("xnli", "test", "qaa"), ("bucc", "test", "qca")]
    first = [world.task_records(*call) for call in calls]
    second = [other.task_records(*call) for call in reversed(calls)][::-1]
    assert first == second
    assert list(world.corpus_lines("qca")) == list(other.corpus_lines("qca"))
    reseeded = World.from_config({**CONFIG, "seed": 8})
    assert list(reseeded.corpus_lines("qca")) != list(world.corpus_lines("qca"))


DIGEST = """
import hashlib, json, sys
from polyprune.synth import World
world = World.from_config(json.loads(sys.argv[1]))
digest = hashlib.sha256()
for lang in world.languages:
    digest.update("\\n".join(world.corpus_lines(lang)).encode())
for task, split in [("xnli", "test"), ("pawsx", "test"), ("squad", "train"), ("bucc", "test")]:
    for lang in world.task_languages(task, split):
        digest.update(json.dumps(world.task_records(task, split, lang)).encode())
print(digest.hexdigest())
"""


def test_same_bytes_in_any_process():
    """No salted hash() anywhere: other hash seeds, same outputs."""
    digests = {
        subprocess.run(
            [sys.executable, "-c", DIGEST, json.dumps(CONFIG)],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(digests) == 1


def test_corpus_is_cc100_layout_with_configured_sizes(world):
    sizes = {}
    for lang in world.languages:
        lines = list(world.corpus_lines(lang))
        assert lines[0] and lines[-1], "no blank line at either end"
        assert all(a or b for a, b in itertools.pairwise(lines)), "one blank line between documents"
        assert "" in lines or len(lines) < 4
        sizes[lang] = sum(len(SENTENCE_END.findall(line)) for line in lines)
    assert sizes == {code: spec["corpus_sentences"] for code, spec in CONFIG["languages"].items()}
    assert max(sizes.values()) / min(sizes.values()) >= 50


def test_task_languages(world):
    everyone, others = world.languages, [code for code in world.languages if code != "qaa"]
    assert world.task_languages("xnli", "train") == everyone
    assert world.task_languages("xquad", "test") == everyone
    assert world.task_languages("xquad", "train") == []
    assert world.task_languages("squad", "test") == []
    assert world.task_languages("bucc", "test") == others
    assert world.task_languages("tatoeba", "test") == others
    with pytest.raises(ValueError):
        world.task_records("bucc", "test", "qaa")
    with pytest.raises(ValueError):
        world.task_languages("mnli", "train")


@pytest.mark.parametrize(("task", "split"), task_splits())
def test_records_follow_the_normalised_schema(world, task, split):
    for lang in world.task_languages(task, split):
        records = world.task_records(task, split, lang)
        assert records
        assert len({record["id"] for record in records}) == len(records)
        if task != "bucc":
            assert len(records) == SIZES[task][split]
        for record in records:
            assert record["lang"] == lang
            SCHEMA_CHECKS[TASK_TYPES[task]](task, record)


def check_pair(task, record):
    assert set(record) == {"id", "lang", "sentence1", "sentence2", "label"}
    assert record["label"] in LABELS[task]
    assert record["sentence1"] != record["sentence2"]


def check_token(task, record):
    assert set(record) == {"id", "lang", "tokens", "tags"}
    tokens, tags = record["tokens"], record["tags"]
    assert len(tokens) == len(tags) > 1
    assert all(token and not re.search(r"\s", token) for token in tokens)
    assert set(tags) <= set(LABELS[task])
    if task == "panx":
        assert any(tag != "O" for tag in tags)
        for before, tag in zip(["O", *tags], tags):
            if tag.startswith("I-"):
                assert before[2:] == tag[2:], f"ill-formed BIO in {record}"


def check_qa(task, record):
    assert set(record) == {"id", "lang", "context", "question", "answers"}
    assert record["question"].endswith("?")
    (text,), (start,) = record["answers"]["text"], record["answers"]["answer_start"]
    assert text.strip() == text != ""
    assert record["context"][start : start + len(text)] == text


def check_mining(task, record):
    assert set(record) == {"id", "lang", "side", "text", "gold"}
    assert record["side"] in ("source", "target")
    assert record["gold"] is None or isinstance(record["gold"], str)


def check_retrieval(task, record):
    assert set(record) == {"id", "lang", "source", "target"}
    assert record["source"] and record["target"]


SCHEMA_CHECKS = {
    "pair": check_pair,
    "token": check_token,
    "qa": check_qa,
    "mining": check_mining,
    "retrieval": check_retrieval,
}


def numbers(text: str) -> list[str]:
    return sorted(re.findall(r"\d+", text))


@pytest.mark.parametrize(
    ("task", "split", "field"),
    [("xnli", "train", "sentence2"), ("pawsx", "test", "sentence1"), ("xquad", "test", "context")],
)
def test_translations_share_meanings(world, task, split, field):
    """Parallel records share a meaning id and label, and say the same numbers."""
    by_lang = {lang: world.task_records(task, split, lang) for lang in world.languages}
    source = by_lang["qaa"]
    for records in by_lang.values():
        assert [meaning_id(r) for r in records] == [meaning_id(r) for r in source]
        assert [r.get("label") for r in records] == [r.get("label") for r in source]
        assert [numbers(r[field]) for r in records] == [numbers(r[field]) for r in source]
    assert len({records[0][field] for records in by_lang.values()}) == len(by_lang)


def test_pair_labels_are_balanced(world):
    for task in ("xnli", "pawsx"):
        labels = [r["label"] for r in world.task_records(task, "train", "qaa")]
        assert set(labels) == set(LABELS[task])
        assert max(map(labels.count, set(labels))) <= 0.7 * len(labels)


def test_udpos_and_panx_are_per_language_annotations(world):
    qaa, qab = (world.task_records("udpos", "train", lang) for lang in ("qaa", "qab"))
    assert [r["tokens"] for r in qaa] != [r["tokens"] for r in qab]
    tags = {tag for lang in world.languages for r in world.task_records("udpos", "train", lang)
            for tag in r["tags"]}  # fmt: skip
    assert {"NOUN", "VERB", "PROPN", "NUM", "ADJ", "PUNCT", "PRON"} <= tags
    entities = {tag[2:] for r in world.task_records("panx", "train", "qba") for tag in r["tags"]}
    assert entities == {"", "PER", "ORG", "LOC"}


def test_qa_shapes(world):
    def mean_context_words(task):
        records = world.task_records(task, "test", "qab")
        return sum(len(r["context"].split()) for r in records) / len(records)

    assert mean_context_words("mlqa") > mean_context_words("xquad") > mean_context_words("tydiqa")
    tydiqa = {lang: world.task_records("tydiqa", "test", lang) for lang in ("qaa", "qab")}
    assert tydiqa["qaa"][0]["context"] != tydiqa["qab"][0]["context"]
    assert numbers(" ".join(r["context"] for r in tydiqa["qaa"])) != numbers(
        " ".join(r["context"] for r in tydiqa["qab"])
    ), "tydiqa evaluation data are not translations"


@pytest.mark.parametrize("lang", ["qab", "qba", "qbc", "qca"])
def test_bucc_gold_pairs_are_translations(world, lang):
    records = world.task_records("bucc", "test", lang)
    by_id = {record["id"]: record for record in records}
    sides = {side: [r for r in records if r["side"] == side] for side in ("source", "target")}
    assert len(sides["source"]) == len(sides["target"]) == SIZES["bucc"]["test"]
    gold = [r for r in sides["source"] if r["gold"]]
    assert len(gold) == round(BUCC_GOLD_SHARE * SIZES["bucc"]["test"])
    for record in gold:
        partner = by_id[record["gold"]]
        assert partner["side"] == "target" and partner["gold"] == record["id"]
        assert numbers(partner["text"]) == numbers(record["text"])
    for side in sides.values():
        assert len({r["text"] for r in side}) == len(side)
    target_texts = " ".join(r["text"] for r in sides["target"])
    assert not CYRILLIC.search(target_texts) and not GREEK.search(target_texts)


def test_tatoeba_pairs_a_language_with_the_source(world):
    source_words = {word for line in world.corpus_lines("qaa") for word in line.split()}
    for lang in ("qba", "qca"):
        records = world.task_records("tatoeba", "test", lang)
        assert len({r["target"] for r in records}) == len(records)
        for record in records:
            assert numbers(record["source"]) == numbers(record["target"])
        target_words = {word for r in records for word in r["target"].split()}
        assert len(target_words & source_words) > 0.5 * len(target_words)
