"""The data of Figures 2, 3 and 7 and of Table 4, by hand computation."""

import copy

import pytest
import torch
import yaml
from workflow_runs import ROOT

from polyprune import config as pc
from polyprune.analysis import gate_vectors, hamming_distances
from polyprune.figures import accuracy_losses, layer_sparsity, pearson, pearson_with_ci
from polyprune.gates import Gates
from polyprune.model import MaskedLM, ModelConfig
from polyprune.prune import gated_model

DEMO = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def gates(heads, ffn):
    return Gates(heads=[torch.tensor(h, dtype=torch.float) for h in heads],
                 ffn=[torch.tensor(f, dtype=torch.float) for f in ffn])  # fmt: skip


def test_hamming_distance_is_the_share_of_components_kept_by_one_set_only():
    cfg = ModelConfig(vocab_size=16, hidden=8, layers=1, heads=2, ffn=4, head_dim=4)
    model = gated_model(
        MaskedLM(cfg),
        {
            "aa": gates([[1, 1]], [[1, 1, 0, 0]]),
            "bb": gates([[1, 0]], [[1, 1, 1, 0]]),  # differs from aa in 2 of 6 components
            "cc": gates([[1, 1]], [[1, 1, 0, 0]]),
        },
    )
    vectors = gate_vectors(model)
    assert vectors["bb"].tolist() == [True, False, True, True, True, False]
    distance = {(a, b): d for a, b, d in hamming_distances(vectors)}
    assert distance[("aa", "bb")] == distance[("bb", "aa")] == pytest.approx(2 / 6)
    assert distance[("aa", "cc")] == distance[("aa", "aa")] == 0
    with pytest.raises(ValueError, match="no gate sets"):
        gate_vectors(MaskedLM(cfg))


def test_the_language_table_names_families_and_sizes():
    rows = {r["code"]: r for r in pc.language_rows(DEMO)}
    assert rows["qbc"] == {
        "code": "qbc", "name": "Kyrethi", "family": "vetric", "corpus": 500, "unit": "sentences"
    }  # fmt: skip
    paper = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    rows = pc.language_rows(paper)
    assert len(rows) == 100 and rows[0]["family"] == "Indo-European" and rows[0]["unit"] == "gib"
    edited = copy.deepcopy(DEMO)
    edited["world"]["languages"]["qcb"].pop("family")
    assert pc.language_rows(edited)[-1]["family"] == "Missing"


def test_layer_sparsity_of_each_pruned_cell_by_hand():
    dense = {"heads": [4, 4], "ffn": [8, 8]}
    params = {
        "dense": {"stored": dense},
        "gradient-shared-s50": {"stored": {"heads": [2, 4], "ffn": [8, 2]}},
        "l0imp-nonshared-s50": {
            "stored": dense,
            "gate_sets": {
                "aa": {"heads": [4, 0], "ffn": [4, 8]},
                "bb": {"heads": [2, 4], "ffn": [8, 8]},
            },
        },
        "distil": {"stored": {"heads": [4], "ffn": [8]}},  # another depth: left out
    }
    rows = {(r["cell"], r["kind"], r["layer"]): r["sparsity"] for r in layer_sparsity(params)}
    assert rows[("gradient-shared-s50", "heads", 0)] == 0.5
    assert rows[("gradient-shared-s50", "ffn", 1)] == 0.75
    assert rows[("l0imp-nonshared-s50", "heads", 0)] == 0.25  # mean of 0 and 0.5
    assert rows[("l0imp-nonshared-s50", "heads", 1)] == 0.5
    assert {cell for cell, _, _ in rows} == {"gradient-shared-s50", "l0imp-nonshared-s50"}


def test_accuracy_losses_and_their_correlation():
    scores = {
        "dense": {"aa": {"accuracy": 70.0}, "bb": {"accuracy": 60.0}, "avg": {"accuracy": 65.0}},
        "l0imp-nonshared-s50": {"aa": {"accuracy": 69.0}, "bb": {"accuracy": 50.0}},
    }
    rows = accuracy_losses(scores, {"aa": 100.0, "bb": 1.0})
    assert rows == [
        {"cell": "l0imp-nonshared-s50", "algorithm": "regularization", "language": "aa",
         "corpus": 100.0, "delta": -1.0, "spread": 0.0},
        {"cell": "l0imp-nonshared-s50", "algorithm": "regularization", "language": "bb",
         "corpus": 1.0, "delta": -10.0, "spread": 0.0},
    ]  # fmt: skip
    # two dense seeds (std 3 in aa), two cell seeds (std 4 in aa): sqrt(9 + 16) = 5
    seed_std = {
        "dense": {"aa": {"accuracy": 3.0}},
        "l0imp-nonshared-s50": {"aa": {"accuracy": 4.0}},
    }
    spreads = [r["spread"] for r in accuracy_losses(scores, {"aa": 100.0, "bb": 1.0}, seed_std)]
    assert spreads == [pytest.approx(5.0), 0.0]
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    x = [1, 2, 3, 4, 5, 6, 7, 8]
    y = [1.2, 1.9, 3.3, 3.8, 5.1, 6.2, 6.8, 8.1]
    r, low, high = pearson_with_ci(x, y, seed=0)
    assert low <= r <= high <= 1 and r == pytest.approx(pearson(x, y))
    assert pearson_with_ci(x, y, seed=0) == (r, low, high)  # seeded


def test_a_figure_is_saved_without_a_date_so_reruns_write_the_same_bytes(tmp_path):
    import time

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from polyprune.figures import save_figure

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    save_figure(fig, [tmp_path / "a.pdf", tmp_path / "a.png"])
    time.sleep(1.1)  # a PDF creation date has one-second resolution
    save_figure(fig, [tmp_path / "b.pdf", tmp_path / "b.png"])
    plt.close(fig)
    for kind in ("pdf", "png"):
        assert (tmp_path / f"a.{kind}").read_bytes() == (tmp_path / f"b.{kind}").read_bytes()


def test_ds_figures_data_by_hand():
    from polyprune.figures import component_pruning, layer_params, sparsity_curves

    def counts(heads, ffn, rank, layers, total):
        return {"heads": heads, "ffn": ffn, "embedding_rank": rank, "encoder_layers": layers,
                "total": total, "head_dim": 4}  # fmt: skip

    params = {
        "dense": {"stored": counts([2, 2], [8, 8], None, [100, 100], 1000)},
        "ds-gradient-shared-s50": {"stored": counts([2, 1], [4, 0], 6, [70, 20], 700)},
        "ds-l0imp-nonshared-s50": {
            "stored": counts([2, 2], [8, 8], 8, [100, 100], 1000),
            "gate_sets": {
                "aa": counts([1, 1], [8, 0], 8, [80, 30], 800),
                "bb": counts([2, 0], [4, 4], 4, [60, 40], 600),
            },
        },
    }
    shares = {(r["run"], r["kind"]): r["pruned"] for r in component_pruning(params)}
    # d = 2 heads x 4 = 8; gradient: ranks 6 of 8, heads 3 of 4, units 4 of 16
    assert shares[("gradient-shared", "embeddings")] == pytest.approx(0.25)
    assert shares[("gradient-shared", "heads")] == pytest.approx(0.25)
    assert shares[("gradient-shared", "ffn")] == pytest.approx(0.75)
    assert shares[("l0imp-nonshared", "embeddings")] == pytest.approx(0.25)  # mean rank 6
    assert shares[("l0imp-nonshared", "heads")] == pytest.approx(0.5)
    layers = {(r["run"], r["layer"]): r["kept"] for r in layer_params(params)}
    assert layers[("gradient-shared", 1)] == pytest.approx(0.2)
    assert layers[("l0imp-nonshared", 0)] == pytest.approx(0.7)
    speed = [
        {"cell": cell, "setting": "cpu", "sequences_per_s": value}
        for cell, value in (("dense", "10"), ("ds-gradient-shared-s50", "15"))
    ]
    rows = sparsity_curves({"dense": 70.0, "ds-gradient-shared-s50": 65.0}, params, speed)
    got = {(r["run"], r["sparsity"], r["measure"]): r["value"] for r in rows}
    assert got[("dense", 0.0, "XNLI accuracy")] == 70.0
    assert got[("gradient-shared", 0.5, "CPU sequences/s")] == 15.0
    assert got[("l0imp-nonshared", 0.5, "parameters (M)")] == pytest.approx(700 / 1e6)
    assert ("l0imp-nonshared", 0.5, "XNLI accuracy") not in got  # no score: no point
    assert not any(m == "GPU sequences/s" for _, _, m in got)
