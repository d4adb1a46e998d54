import itertools
import json
import math

import pytest
import torch
from test_train import SETTINGS, shard_set, write_world

from polyprune import ds
from polyprune.config import component_weights
from polyprune.errors import CheckpointError, ConfigError
from polyprune.gates import Gates
from polyprune.importance import factorize_embeddings
from polyprune.model import MaskedLM, ModelConfig, save_model
from polyprune.objectives import Dynamic, DynamicSettings
from polyprune.train import TrainSettings, train_mlm

pytestmark = pytest.mark.usefixtures("one_thread")

GRID = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
LANGS = ["aa", "bb"]


def tiny_model(seed=0) -> MaskedLM:
    torch.manual_seed(seed)
    cfg = ModelConfig(
        vocab_size=50, hidden=16, layers=3, heads=4, ffn=24, head_dim=4, max_positions=20,
        pad_id=1, dropout=0.0, attention_dropout=0.0,
    )  # fmt: skip
    return factorize_embeddings(MaskedLM(cfg).eval())


def random_scores(model: MaskedLM, seed: int) -> Gates:
    g = torch.Generator().manual_seed(seed)
    cfg = model.cfg
    return Gates(
        heads=[torch.rand(h, generator=g) for h in cfg.heads],
        ffn=[torch.rand(f, generator=g) for f in cfg.ffn],
        emb=torch.rand(cfg.emb_rank, generator=g),
    )


def dynamic(model, names=("shared",), trainable=False, grid=GRID) -> ds.DynamicGates:
    unit = component_weights(model.cfg.head_dim, {})
    scores = {name: random_scores(model, i) for i, name in enumerate(names)}
    return ds.from_scores(scores, unit, grid, trainable)


def clamp_gate(z: torch.Tensor) -> torch.Tensor:
    """The noiseless hard-concrete gate at l = -0.1, r = 1.1."""
    return (torch.sigmoid(z) * 1.2 - 0.1).clamp(0, 1)


def test_eq16_puts_every_component_on_at_its_boundary_and_off_one_size_below():
    model = tiny_model()
    gates = dynamic(model, LANGS)
    assert gates.on == pytest.approx(math.log(11)) and gates.off == pytest.approx(-math.log(11))
    for kind in ds.KINDS:
        alphas, betas = gates.alpha_beta(kind)
        boundary = gates._split(kind, getattr(gates, f"{kind}_boundary"))
        for alpha, beta, t_hat in zip(alphas, betas, boundary):
            delta = (gates.on - gates.off) / alpha  # Eq 16 read backwards
            assert torch.allclose(clamp_gate(alpha * t_hat + beta), torch.ones_like(alpha))
            off = clamp_gate(alpha * (t_hat - delta) + beta)
            assert torch.allclose(off, torch.zeros_like(alpha), atol=1e-4)


def test_delta_is_each_components_share_of_the_weighted_size():
    model = tiny_model()
    unit = component_weights(4, {})  # head 16, unit 2, rank 1
    _t_hat, delta = ds.boundaries(random_scores(model, 0), unit, GRID)
    total = 3 * (4 * 16 + 24 * 2) + 16 * 1
    assert delta.heads[0][0].item() == pytest.approx(16 / total)
    assert delta.ffn[2][5].item() == pytest.approx(2 / total)
    assert delta.emb[3].item() == pytest.approx(1 / total)


def test_boundaries_snap_each_cumulative_size_up_to_the_grid_by_hand():
    # weights: head 4, FFN unit 2, rank 1 (total 16); ranked: head0 (cumulative 4/16), ffn0
    # (6/16), ffn1 (8/16), ffn2 (10/16), emb0 (11/16), head1 (15/16), emb1 (16/16)
    scores = Gates(
        heads=[torch.tensor([0.9, 0.1])],
        ffn=[torch.tensor([0.5, 0.4, 0.3])],
        emb=torch.tensor([0.2, 0.05]),
    )
    t_hat, delta = ds.boundaries(scores, component_weights(1, {}), [0, 0.25, 0.5, 0.75, 1])
    assert t_hat.heads[0].tolist() == [0.25, 1.0]
    assert t_hat.ffn[0].tolist() == [0.5, 0.5, 0.75]
    assert t_hat.emb.tolist() == [0.75, 1.0]
    assert delta.heads[0].tolist() == [0.25, 0.25] and delta.emb.tolist() == [1 / 16, 1 / 16]


def kept(g: Gates) -> set:
    out = set()
    for kind in ds.KINDS:
        tensors = [g.emb] if kind == "emb" else getattr(g, kind)
        for layer, t in enumerate(tensors):
            out |= {(kind, layer, int(i)) for i in t.reshape(-1).nonzero().flatten()}
    return out


def test_a_component_kept_at_a_sparsity_is_kept_at_every_lower_one():
    gates = dynamic(tiny_model(), LANGS)
    for row in range(len(LANGS)):
        sets = [kept(gates.at(1 - s, row)) for s in GRID]
        for lower, higher in itertools.pairwise(sets):
            assert higher <= lower
        assert sets[-1] == set() and len(sets[0]) == sum(
            t.numel() for t in gates.at(1.0, row).leaves()
        )


@pytest.mark.parametrize("setting", ["shared", "nonshared"])
def test_the_cut_model_reaches_each_grid_sparsity_within_one_component(setting):
    model = tiny_model()
    names = ["shared"] if setting == "shared" else LANGS
    gates = dynamic(model, names)
    largest = max(gates.unit.values()) / ds._full(gates.at(1.0, 0), gates.unit)
    for s in GRID[:-1]:
        small, info = ds.cut(model, gates, s)
        for reached in info["gate_sets"].values():
            assert s - 1e-9 <= reached["sparsity"] < s + largest
    assert small.gate_table is None if setting == "shared" else small.gate_table.names == LANGS


def test_the_cut_model_computes_what_the_gated_ds_model_computes_at_that_size():
    model = tiny_model(1)
    gates = dynamic(model, LANGS, trainable=True)
    with torch.no_grad():  # trained-looking gates: boundaries off the grid, fractional gates
        for p in gates.parameters():
            p.add_(torch.randn_like(p) * 0.3 * p.abs().clamp_min(1))
    ids = torch.randint(3, 50, (2, 7))
    for s in (0.0, 0.3, 0.7):
        for lang in LANGS:
            row = LANGS.index(lang)
            gates.eval()
            gates.size = 1 - s
            expected = model(ids, gates=gates(torch.full((2,), row)))
            small, _ = ds.cut(model, gates, s, language=lang)
            assert small.gate_table is None
            assert torch.allclose(small(ids), expected, atol=1e-5)
            assert (
                sum(p.numel() for p in small.parameters())
                < sum(p.numel() for p in model.parameters())
                or s == 0.0
            )


def test_a_ds_checkpoint_round_trips_and_anything_else_is_refused(tmp_path):
    model = tiny_model()
    gates = dynamic(model, LANGS, trainable=True)
    ds.save_dynamic(model, gates, tmp_path / "ds")
    model2, gates2 = ds.load_dynamic(tmp_path / "ds")
    assert gates2.names == LANGS and gates2.grid == GRID and gates2.trainable
    for (k, a), (_, b) in zip(gates.state_dict().items(), gates2.state_dict().items()):
        assert torch.equal(a, b), k
    ids = torch.randint(3, 50, (1, 5))
    assert torch.equal(
        ds.cut(model, gates, 0.4, "bb")[0](ids), ds.cut(model2, gates2, 0.4, "bb")[0](ids)
    )
    save_model(model, tmp_path / "plain")
    with pytest.raises(CheckpointError, match="not a Dynamic Sparsification checkpoint"):
        ds.load_dynamic(tmp_path / "plain")


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5])
def test_a_sparsity_outside_the_grid_is_refused(sparsity):
    model = tiny_model()
    with pytest.raises(ConfigError, match=f"sparsity {sparsity}: outside"):
        ds.cut(model, dynamic(model), sparsity)


@pytest.mark.parametrize("grid", [[0.0, 0.5, 0.4, 1.0], [0.1, 0.5, 1.0], [0.0, 0.5], [0.0]])
def test_a_grid_that_does_not_rise_from_0_to_1_is_refused(grid):
    with pytest.raises(ConfigError, match=r"pruning\.dynamic\.grid"):
        ds.check_grid(grid)


# ---- training ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return write_world(tmp_path_factory.mktemp("world"))


def ds_objective(trainable: bool) -> Dynamic:
    model = tiny_model()
    gates = dynamic(model, LANGS, trainable=trainable, grid=[0, 0.25, 0.5, 0.75, 1])
    prior = torch.ones(2, 2)
    return Dynamic(model, gates, DynamicSettings(constraint_weight=128, diversity=1), prior)


def train(world, ckpt, objective, stop_after=None):
    s = TrainSettings(**SETTINGS)
    return train_mlm(objective, shard_set(world), s, ckpt, {"t": 1}, stop_after=stop_after)


def test_a_killed_ds_run_resumes_to_the_same_weights_and_gates(world, tmp_path):
    reference = ds_objective(trainable=True)
    train(world, tmp_path / "ref", reference)
    again = ds_objective(trainable=True)
    train(world, tmp_path / "ckpt", again, stop_after=4)
    again = ds_objective(trainable=True)
    records = train(world, tmp_path / "ckpt", again)
    assert records[0]["step"] == 5
    expected = reference.state_dict()
    for key, value in again.state_dict().items():
        assert torch.equal(value, expected[key]), key
    untrained = ds_objective(trainable=True).gates.state_dict()
    assert not torch.equal(reference.gates.ffn_offset, untrained["ffn_offset"])  # L0-based DS


def test_gradient_ds_trains_the_weights_under_frozen_gates_at_sampled_sizes(world, tmp_path):
    objective = ds_objective(trainable=False)
    gates_before = {k: v.clone() for k, v in objective.gates.state_dict().items()}
    weights_before = objective.model.layers[0].ffn_up.weight.clone()
    records = train(world, tmp_path / "ckpt", objective)
    for key, value in objective.gates.state_dict().items():
        assert torch.equal(value, gates_before[key]), key
    assert not torch.equal(objective.model.layers[0].ffn_up.weight, weights_before)
    sizes = [r["size"] for r in records]  # the mean of each step's two micro-batches
    assert len(set(sizes)) > 1 and all(0.25 <= t <= 1 for t in sizes)
    assert all(abs(8 * t - round(8 * t)) < 1e-9 for t in sizes)  # two grid sizes (k / 4)


def test_polyprune_cut_writes_a_smaller_model_that_loads_in_one_call(tmp_path, capsys):
    from polyprune.bench import model_counts
    from polyprune.cli import main
    from polyprune.model import load_model

    model = tiny_model()
    ds.save_dynamic(model, dynamic(model), tmp_path / "ds")
    main(["cut", str(tmp_path / "ds"), "--sparsity", "0.5", "--out", str(tmp_path / "s50")])
    printed = json.loads(capsys.readouterr().out)
    small = load_model(tmp_path / "s50")
    assert printed["params"] == model_counts(small)["stored"]["total"]
    reached = printed["gate_sets"]["shared"]["sparsity"]
    assert 0.5 <= reached < 0.5 + 16 / 352 and small.cfg.emb_rank < 16
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    save_model(model, tmp_path / "plain")
    for argv, culprit in [
        (["cut", str(tmp_path / "plain"), "--sparsity", "0.5"], "not a Dynamic Sparsification"),
        (["cut", str(tmp_path / "ds"), "--sparsity", "1.2"], "sparsity 1.2: outside"),
    ]:
        with pytest.raises(SystemExit, match=culprit):
            main([*argv, "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()
