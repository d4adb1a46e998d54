"""Training objectives through the one training loop: L0-learned gates (vanilla and improved),
exact resume of log alpha, λ and their optimizer state. One process, tiny model, CPU."""

import pytest
import torch
from test_train import DATA_CFG, LANGS, SETTINGS, shard_set, write_world

from polyprune.config import component_weights
from polyprune.l0 import HardConcreteGates, family_prior
from polyprune.model import MaskedLM, ModelConfig
from polyprune.objectives import L0, L0Settings
from polyprune.prune import achieved_sparsity
from polyprune.train import TrainSettings, train_mlm

pytestmark = pytest.mark.usefixtures("one_thread")
assert DATA_CFG  # the shards of test_train's world


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return write_world(tmp_path_factory.mktemp("world"))


def l0_objective(**spec) -> L0:
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=48, hidden=32, layers=2, heads=2, ffn=64, head_dim=16, max_positions=20
    )
    model = MaskedLM(cfg)
    unit = component_weights(cfg.head_dim, {})
    gates = HardConcreteGates(list(LANGS), cfg.heads, cfg.ffn, None, unit)
    prior = family_prior(list(LANGS), {"aa": "x", "bb": "y"})
    return L0(model, gates, L0Settings(**spec), prior)


def train(world, ckpt, objective, stop_after=None, **changes):
    s = TrainSettings(**{**SETTINGS, **changes})
    log = []
    records = train_mlm(
        objective, shard_set(world), s, ckpt, {"t": 1}, log=log.append, stop_after=stop_after
    )
    return records, log


IMPROVED = dict(target_sparsity=0.5, diversity=0.5, alpha_only_steps=2, alpha_lr=0.3)
LAGRANGIAN = dict(IMPROVED, constraint="lagrangian")


def test_a_killed_l0_run_resumes_to_the_same_log_alpha_lambda_and_weights(world, tmp_path):
    reference = l0_objective(**LAGRANGIAN)
    train(world, tmp_path / "ref", reference)
    resumed = l0_objective(**LAGRANGIAN)
    train(world, tmp_path / "ckpt", resumed, stop_after=4)
    again = l0_objective(**LAGRANGIAN)
    records, _ = train(world, tmp_path / "ckpt", again)
    assert records[0]["step"] == 5
    expected = reference.state_dict()
    assert {k for k in expected if k.startswith(("gates.", "lagrangian."))}  # trained state
    for key, value in again.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert reference.lagrangian.lambda1.item() != 0  # λ moved


def test_log_alpha_trains_alone_first(world, tmp_path):
    objective = l0_objective(**IMPROVED)
    before = {k: v.clone() for k, v in objective.model.state_dict().items()}
    train(world, tmp_path / "ckpt", objective, steps=2, warmup_steps=1)
    after = objective.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(objective.gates.heads[0], torch.full_like(objective.gates.heads[0], 3))


def test_improved_l0_reaches_its_target_in_every_language(world, tmp_path):
    """The paper's Eq 11 (absolute form) on a tiny model: every language's expected and achieved
    encoder sparsity within 1 point of the target."""
    objective = l0_objective(**IMPROVED)
    train(world, tmp_path / "ckpt", objective, steps=80, log_every=20)
    expected = objective.gates.expected_sparsity(None)
    assert expected.tolist() == pytest.approx([0.5, 0.5], abs=0.01)
    model = objective.result()
    unit = component_weights(model.cfg.head_dim, {})
    for lang in LANGS:
        assert achieved_sparsity(model.gates_for(lang), unit) == pytest.approx(0.5, abs=0.01)


def test_vanilla_l0_prunes_by_its_lambda(world, tmp_path):
    sparsity = {}
    for lam in (0.0, 2.0):
        objective = l0_objective(lam=lam, alpha_lr=0.3)
        records, _ = train(world, tmp_path / f"lam{lam}", objective, steps=40, log_every=40)
        sparsity[lam] = records[-1]["expected_sparsity"]
    assert sparsity[2.0] > sparsity[0.0] + 0.05
