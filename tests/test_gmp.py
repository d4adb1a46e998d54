import pytest
import torch

from polyprune.gates import Gates
from polyprune.gmp import CubicSchedule, MagnitudePruner, component_scores, encoder_matrices
from polyprune.model import MaskedLM, ModelConfig
from polyprune.prune import gated_model, physically_prune

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model(seed=0, gated=False) -> MaskedLM:
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=40, hidden=16, layers=2, heads=4, ffn=24, head_dim=4)
    model = MaskedLM(cfg)
    if gated:
        model = gated_model(model, {"shared": Gates.ones(cfg.heads, cfg.ffn, None)})
    return model


def test_the_cubic_schedule_by_hand():
    schedule = CubicSchedule(final=0.9, start=10, end=50, every=10)
    # s_t = 0.9 + (0 - 0.9) (1 - (t - 10) / 40)^3 at t = 10, 20, ..., 50
    expected = {10: 0.0, 20: 0.9 - 0.9 * 0.75**3, 30: 0.9 - 0.9 * 0.5**3, 40: 0.9 - 0.9 * 0.25**3}
    for step, sparsity in expected.items():
        assert schedule.updates_at(step)
        assert schedule.sparsity(step) == pytest.approx(sparsity)
        assert schedule.sparsity(step + 9) == pytest.approx(sparsity)  # held until the next
    assert not schedule.updates_at(25) and not schedule.updates_at(60)
    assert schedule.sparsity(5) == 0.0
    assert schedule.sparsity(50) == schedule.sparsity(1000) == pytest.approx(0.9)
    uneven = CubicSchedule(final=0.5, start=0, end=25, every=10, initial=0.1)
    assert [s for s in range(40) if uneven.updates_at(s)] == [0, 10, 20, 25]
    assert uneven.sparsity(0) == pytest.approx(0.1) and uneven.sparsity(25) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(final=0.5, start=10, end=5), "ends .* before it starts"),
        (dict(final=1.0, start=0, end=5), "< 1"),
        (dict(final=-0.1, start=0, end=5), "0 <= initial"),
        (dict(final=0.5, start=0, end=5, every=0), "every >= 1"),
    ],
)
def test_a_bad_schedule_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CubicSchedule(**kwargs)


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_unstructured_sparsity_is_the_target_within_one_weight_per_matrix(scope):
    model = tiny_model()
    pruner = MagnitudePruner(model, CubicSchedule(final=0.7, start=1, end=1), "unstructured", scope)
    pruner.step(1)
    matrices = encoder_matrices(model)
    zeros = [int((w == 0).sum()) for w in matrices]
    total = sum(w.numel() for w in matrices)
    if scope == "layer":
        assert zeros == [round(0.7 * w.numel()) for w in matrices]
    else:
        assert sum(zeros) == round(0.7 * total)
    assert pruner.sparsity() == sum(zeros) / total


def test_global_unstructured_removes_the_smallest_magnitudes():
    model = tiny_model()
    before = torch.cat([w.detach().abs().flatten() for w in encoder_matrices(model)])
    pruner = MagnitudePruner(
        model, CubicSchedule(final=0.6, start=1, end=1), "unstructured", "global"
    )
    pruner.step(1)
    after = torch.cat([w.detach().flatten() for w in encoder_matrices(model)])
    assert before[after == 0].max() <= before[after != 0].min()


def test_pruned_weights_stay_zero_through_later_optimizer_steps():
    model = tiny_model()
    schedule = CubicSchedule(final=0.8, start=1, end=7, every=2)
    pruner = MagnitudePruner(model, schedule, "unstructured", "layer")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = torch.randint(4, 40, (4, 10), generator=torch.Generator().manual_seed(0))
    pruned_before, measured = torch.zeros(0, dtype=torch.bool), []
    for step in range(1, 12):
        model(ids, labels=ids).backward()
        optimizer.step()
        optimizer.zero_grad()
        pruner.step(step)
        pruned = torch.cat([(w == 0).flatten() for w in encoder_matrices(model)])
        assert pruned[: len(pruned_before)][pruned_before].all()  # once pruned, stays zero
        pruned_before = pruned
        measured.append(pruner.sparsity())
    assert measured[0] == 0.0
    assert measured == sorted(measured)
    assert measured[-1] == pytest.approx(0.8, abs=0.01)


def test_structured_layer_scope_prunes_the_same_share_of_every_layers_heads_and_units():
    model = tiny_model(gated=True)
    pruner = MagnitudePruner(model, CubicSchedule(final=0.5, start=1, end=1), "structured", "layer")
    scores = component_scores(model)
    pruner.step(1)
    gates = model.gate_table.select(0)
    for layer in range(2):
        heads, units = gates.heads[layer][0], gates.ffn[layer][0]
        assert int((heads == 0).sum()) == 2 and int((units == 0).sum()) == 12
        assert scores["heads"][layer][heads == 0].max() <= scores["heads"][layer][heads == 1].min()
        assert scores["ffn"][layer][units == 0].max() <= scores["ffn"][layer][units == 1].min()
    # heads: 4 d dh = 256 weights each, units: 2 d = 32; half of each goes
    assert pruner.sparsity() == (4 * 256 + 24 * 32) / (8 * 256 + 48 * 32)


def test_structured_global_scope_reaches_the_target_within_one_component_and_prunes_physically():
    model = tiny_model(gated=True)
    with torch.no_grad():
        model.layers[1].attn.query.weight[:4] *= 0.01  # layer 1's first head is the weakest
    pruner = MagnitudePruner(
        model, CubicSchedule(final=0.4, start=1, end=1), "structured", "global"
    )
    pruner.step(1)
    assert model.gate_table.select(0).heads[1][0, 0] == 0
    assert abs(pruner.sparsity() - 0.4) <= 256 / (8 * 256 + 48 * 32)
    small = physically_prune(model).eval()
    ids = torch.randint(4, 40, (2, 9), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(small(ids), model.eval()(ids), atol=1e-5)


def test_structured_pruning_needs_one_shared_gate_set():
    with pytest.raises(ValueError, match="one shared gate set"):
        MagnitudePruner(tiny_model(), CubicSchedule(0.5, 0, 1), "structured", "global")
    with pytest.raises(ValueError, match="kind 'random'"):
        MagnitudePruner(tiny_model(), CubicSchedule(0.5, 0, 1), "random", "global")


def test_a_pruned_component_stays_pruned_when_its_weights_grow_later():
    model = tiny_model(gated=True)
    schedule = CubicSchedule(final=0.5, start=1, end=2, initial=0.25)
    pruner = MagnitudePruner(model, schedule, "structured", "layer")
    pruner.step(1)
    first = model.gate_table.select(0)
    pruned_head = int((first.heads[0][0] == 0).nonzero()[0])
    with torch.no_grad():
        model.layers[0].attn.out.weight[:, pruned_head * 4 : pruned_head * 4 + 4] *= 100
    pruner.step(2)
    second = model.gate_table.select(0)
    for kind in ("heads", "ffn"):
        for before, after in zip(getattr(first, kind), getattr(second, kind)):
            assert (after[before == 0] == 0).all()
    assert int((second.heads[0][0] == 0).sum()) == 2
