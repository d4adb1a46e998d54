"""Subnetwork distances (Figure 7) and the language table (Table 4), by hand computation."""

import copy

import pytest
import torch
import yaml
from workflow_runs import ROOT

from polyprune import config as pc
from polyprune.analysis import gate_vectors, hamming_distances
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
