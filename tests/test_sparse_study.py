import math

import pytest

from polyprune.sparse_study import (
    delta_statistics,
    exemplar_rows,
    f1_by_group,
    language_deltas,
    language_groups,
    robustness_rows,
)


def result(regime, variant, seed, clean, noisy=None):
    test = {"clean": {**clean, "avg": sum(clean.values()) / len(clean)}}
    if noisy:
        test["char_noise-0p1"] = {**noisy, "avg": sum(noisy.values()) / len(noisy)}
    return {"regime": regime, "variant": variant, "seed": seed, "test": test}


RESULTS = [
    result("zero-shot", "dense", 0, {"qa": 80, "qb": 60, "qc": 40}, {"qa": 70, "qb": 50, "qc": 30}),
    result("zero-shot", "dense", 1, {"qa": 82, "qb": 62, "qc": 44}, {"qa": 72, "qb": 52, "qc": 32}),
    result(
        "zero-shot",
        "unstructured-s50",
        0,
        {"qa": 79, "qb": 55, "qc": 30},
        {"qa": 60, "qb": 40, "qc": 20},
    ),
    result(
        "zero-shot",
        "unstructured-s50",
        1,
        {"qa": 81, "qb": 57, "qc": 34},
        {"qa": 62, "qb": 42, "qc": 22},
    ),
]
SIZES = {"qa": 1000.0, "qb": 100.0, "qc": 10.0}


def test_language_groups_cut_by_size_into_equal_counts():
    sizes = {"a": 5, "b": 1, "c": 3, "d": 8, "e": 2, "f": 9}
    assert language_groups(sizes, 3) == {
        "b": "low", "e": "low", "c": "mid", "a": "mid", "d": "high", "f": "high"
    }  # fmt: skip
    assert set(language_groups(sizes, 2).values()) == {"low", "high"}


def test_f1_by_group_by_hand():
    groups = {"qa": "high", "qb": "low", "qc": "low"}
    rows = {(r["kind"], r["sparsity"], r["group"]): r for r in f1_by_group(RESULTS, groups)}
    # low group, sparse: seed 0 (55 + 30) / 2 = 42.5, seed 1 (57 + 34) / 2 = 45.5
    low = rows["unstructured", 0.5, "low"]
    assert low["f1"] == pytest.approx(44.0) and low["std"] == pytest.approx(math.sqrt(4.5))
    dense_low = rows["unstructured", 0.0, "low"]  # the dense model under every kind
    assert dense_low["f1"] == pytest.approx((50 + 53) / 2) and dense_low["seeds"] == 2
    assert rows["unstructured", 0.5, "high"]["f1"] == pytest.approx(80.0)


def test_language_deltas_and_their_correlation_by_hand():
    deltas = language_deltas(RESULTS, {"pretraining": SIZES})
    by_lang = {r["language"]: r for r in deltas}
    # qa: 80 - 81 = -1, qb: 56 - 61 = -5, qc: 32 - 42 = -10
    assert [by_lang[x]["delta"] for x in ("qa", "qb", "qc")] == pytest.approx([-1, -5, -10])
    assert by_lang["qc"]["spread"] == pytest.approx(math.sqrt(8 + 8))  # std 2.83 each
    (stats,) = delta_statistics(deltas, ["pretraining"], seed=0)
    # x = log10 size = 3, 2, 1; y = -1, -5, -10: r = sxy / sqrt(sxx syy)
    x, y = [3, 2, 1], [-1, -5, -10]
    mx, my = 2, -16 / 3
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    assert stats["r_pretraining"] == pytest.approx(sxy / math.sqrt(sxx * syy))
    assert stats["lose"] == "qa qb qc" and stats["gain"] == ""
    assert stats["mean_delta"] == pytest.approx(-16 / 3)


def test_robustness_rows_by_hand():
    rows = {(r["variant"], r["test_set"]): r for r in robustness_rows(RESULTS)}
    dense = rows["dense", "char_noise-0p1"]
    assert dense["f1"] == pytest.approx((50 + 52) / 2)
    assert dense["change"] == pytest.approx(51 - (60 + 62.666666) / 2, abs=1e-3)
    assert rows["unstructured-s50", "clean"]["change"] == 0


def test_exemplars_per_language_by_hand():
    dense = [
        {"clean": {"qa": ["O B-PER", "O O", "B-LOC"]}},
        {"clean": {"qa": ["O B-PER", "O O", "O"]}},
    ]
    sparse = [
        {"clean": {"qa": ["O O", "O O", "O"]}},
        {"clean": {"qa": ["O O", "O O", "B-LOC"]}},
    ]
    rows = exemplar_rows({("zero-shot", "dense"): dense, ("zero-shot", "unstructured-s50"): sparse})
    # modal (ties: first seed): dense O B-PER, O O, B-LOC; sparse O O, O O, O
    assert rows == [
        {
            "regime": "zero-shot",
            "variant": "unstructured-s50",
            "test_set": "clean",
            "language": "qa",
            "exemplars": 2,
            "sentences": 3,
            "share": 2 / 3,
        }
    ]


def test_a_hub_model_converts_with_its_tokenizer(tmp_path):
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    from polyprune.config import identity
    from polyprune.data import load_tokenizer
    from polyprune.model import load_model
    from polyprune.sparse_study import convert_base

    hub = tmp_path / "hub"
    torch.manual_seed(0)
    config = dict(vocab_size=9, hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
    BertForMaskedLM(BertConfig(**config, intermediate_size=24)).save_pretrained(hub)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nka\nlo\nmi\nru\n")
    BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")).save_pretrained(hub)
    convert_base(
        str(hub), None, tmp_path / "model", tmp_path / "tok", identity({"run": "t", "seed": 0})
    )
    assert load_model(tmp_path / "model").cfg.layout == "bert"
    tokenizer = load_tokenizer(str(tmp_path / "tok"))
    assert tokenizer("ka lo", "mi")["token_type_ids"] == [0, 0, 0, 0, 1, 1]
