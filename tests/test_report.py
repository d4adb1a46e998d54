"""Table helpers: the sparsity and size of a row, and the mean and spread over fine-tuning seeds,
by hand computation."""

import json

import pytest

from polyprune.report import cell_sizes, encoder_sparsity, score_table, task_scores

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


def test_several_seeds_give_their_mean_and_standard_deviation(tmp_path):
    files = []
    for seed, (aa, bb) in enumerate([(60.0, 40.0), (64.0, 44.0)]):
        test = {
            "xnli": {
                "aa": {"accuracy": aa},
                "bb": {"accuracy": bb},
                "avg": {"accuracy": (aa + bb) / 2},
            }
        }
        path = tmp_path / f"seed{seed}.json"
        path.write_text(
            json.dumps({"cell": "dense", "mode": "zero-shot", "seed": seed, "test": test})
        )
        files.append(path)
    scores, spread = task_scores(files)
    xnli = scores[("dense", "zero-shot", "xnli")]
    assert xnli["aa"]["accuracy"] == 62.0 and xnli["avg"]["accuracy"] == 52.0
    assert spread[("dense", "zero-shot", "xnli")]["seeds"] == 2
    assert spread[("dense", "zero-shot", "xnli")]["std"]["accuracy"] == pytest.approx(2**0.5 * 2)
    by_lang = spread[("dense", "zero-shot", "xnli")]["std_by_lang"]
    assert by_lang["aa"]["accuracy"] == pytest.approx(2**0.5 * 2)  # stdev(60, 64)
    _, rows, _ = score_table(scores, ["dense"], ["zero-shot"], ["xnli"], spread=spread)
    assert rows[0][4] == "52.0 ± 2.8"
    one, no_spread = task_scores(files[:1])
    assert no_spread == {} and one[("dense", "zero-shot", "xnli")]["avg"]["accuracy"] == 50.0


def test_table5_takes_each_ds_runs_cut_nearest_the_reference_size():
    from polyprune.report import matched_cuts

    def counts(total):
        return {"total": total}

    params = {
        "distil": {"stored": counts(800)},
        "ds-gradient-shared-s50": {"stored": counts(820)},
        "ds-gradient-shared-s70": {"stored": counts(430)},
        "ds-l0imp-nonshared-s50": {
            "stored": counts(1200),
            "gate_sets": {"aa": counts(900), "bb": counts(500)},  # mean 700
        },
        "ds-l0imp-nonshared-s70": {"stored": counts(1200), "gate_sets": {"aa": counts(450)}},
    }
    assert matched_cuts(params, 800) == {
        "ds-gradient-shared": "ds-gradient-shared-s50",
        "ds-l0imp-nonshared": "ds-l0imp-nonshared-s50",
    }
    assert matched_cuts(params, 440)["ds-l0imp-nonshared"] == "ds-l0imp-nonshared-s70"
    # equally near: the sparser cut
    tie = {
        "ds-gradient-shared-s50": {"stored": counts(500)},
        "ds-gradient-shared-s70": {"stored": counts(300)},
    }
    assert matched_cuts(tie, 400) == {"ds-gradient-shared": "ds-gradient-shared-s70"}
