"""Table helpers: the sparsity and size of a row, by hand computation."""

import pytest

from polyprune.report import cell_sizes, encoder_sparsity, score_table

WEIGHTS = {"head_per_dim": 4, "ffn": 2, "emb": 1}


def counts(heads, ffn, total, head_dim=2):
    return {"heads": heads, "ffn": ffn, "total": total, "head_dim": head_dim}


def test_encoder_sparsity_weighs_heads_and_units_as_appendix_b():
    dense = counts([4, 4], [8, 8], 1000)
    # a head weighs 4 x head_dim = 8, a unit 2: full 8 x 8 + 2 x 16 = 96; kept 8 x 6 + 2 x 8 = 64
    assert encoder_sparsity(counts([2, 4], [8, 0], 900), dense, WEIGHTS) == pytest.approx(1 / 3)
    # a removed layer counts in full (a half-depth student)
    assert encoder_sparsity(counts([4], [8], 600), dense, WEIGHTS) == pytest.approx(0.5)


def test_a_cell_size_averages_its_gate_sets_and_keeps_their_range():
    params = {
        "dense": {"cell": "dense", "stored": counts([4, 4], [8, 8], 1000)},
        "x-nonshared-s50": {
            "stored": counts([4, 4], [8, 8], 1000),
            "gate_sets": {"a": counts([2, 4], [8, 0], 900), "b": counts([4, 4], [8, 8], 1000)},
        },
    }
    sizes = cell_sizes(params, WEIGHTS)
    assert sizes["dense"]["sparsity"] == 0
    cell = sizes["x-nonshared-s50"]
    assert cell["sparsity"] == pytest.approx(1 / 6)
    assert cell["sparsity_range"] == pytest.approx([0, 1 / 3])
    assert cell["params"] == 950
    header, rows, _ = score_table({}, ["x-nonshared-s50"], ["zero-shot"], ["xnli"], sizes)
    assert header[:4] == ["mode", "model", "Sparsity %", "Params"]
    assert rows[0][2:4] == ["16.7 (0.0-33.3)", "0.00M"]
    assert rows[0][4:] == ["-", "-"]  # no scores yet
