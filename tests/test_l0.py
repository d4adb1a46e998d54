import math

import pytest
import torch

from polyprune.config import component_weights
from polyprune.gates import sparsity
from polyprune.l0 import (
    HardConcreteGates,
    Lagrangian,
    diversity_loss,
    family_prior,
    l0_penalty,
    sparsity_constraint,
)
from polyprune.model import MaskedLM, ModelConfig
from polyprune.prune import SCOPES, achieved_sparsity

pytestmark = pytest.mark.usefixtures("one_thread")

UNIT = component_weights(4, {})  # head 16, FFN unit 2, embedding rank 1 (units of d)


def hard_concrete(names=("shared",), heads=(2, 3), ffn=(8, 6), emb_rank=5, seed=0, **kw):
    torch.manual_seed(seed)
    return HardConcreteGates(list(names), list(heads), list(ffn), emb_rank, UNIT, **kw)


def set_log_alpha(module, value):
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(value)


def test_eq9_matches_closed_form_and_monte_carlo():
    hc = hard_concrete(heads=[3], ffn=[], emb_rank=None)
    with torch.no_grad():
        hc.heads[0].copy_(torch.tensor([[-2.0, 0.0, 1.5]]))
    p = hc.prob_nonzero(hc.heads[0])[0]
    # log alpha = 0: sigmoid(-(2/3) ln(0.1/1.1)) = 1 / (1 + 11^(-2/3))
    assert p[1].item() == pytest.approx(1 / (1 + 11 ** (-2 / 3)), abs=1e-6)
    assert p[1].item() == pytest.approx(0.83182, abs=1e-5)
    n = 200_000
    with torch.no_grad():
        samples = hc(torch.zeros(n, dtype=torch.long)).heads[0]  # (n, 3)
    estimate = (samples > 0).float().mean(0)
    tolerance = 5 * torch.sqrt(p * (1 - p) / n)  # 5 standard errors
    assert ((estimate - p).abs() < tolerance).all(), (estimate, p)


def test_deterministic_gates():
    hc = hard_concrete(heads=[3], ffn=[], emb_rank=None)
    with torch.no_grad():
        hc.heads[0].copy_(torch.tensor([[50.0, -50.0, 0.0]]))
    g = hc.deterministic(0).heads[0]
    assert torch.equal(g, torch.tensor([[1.0, 0.0, 0.5]]))  # 0.5 (1.1 + 0.1) - 0.1 = 0.5
    assert not g.requires_grad


def test_samples_are_stretched_and_seeded_and_eval_is_deterministic():
    hc = hard_concrete(names=["a", "b"], heads=[4], ffn=[500], emb_rank=None)
    set_log_alpha(hc, 0.0)
    rows = torch.tensor([0, 1, 1])
    torch.manual_seed(1)
    g = hc(rows)
    assert g.heads[0].shape == (3, 4) and g.ffn[0].shape == (3, 500)
    s = g.ffn[0]
    assert (s >= 0).all() and (s <= 1).all()
    assert (s == 0).any() and (s == 1).any() and ((s > 0) & (s < 1)).any()
    torch.manual_seed(1)
    assert torch.equal(hc(rows).ffn[0], s)
    torch.manual_seed(2)
    assert not torch.equal(hc(rows).ffn[0], s)
    hc.eval()
    first, second = hc(rows), hc(rows)
    assert torch.equal(first.ffn[0], second.ffn[0])
    assert torch.equal(first.ffn[0], torch.full((3, 500), 0.5))


def test_expected_sparsity_matches_appendix_b_sparsity_of_binary_gates():
    hc = hard_concrete(names=["a", "b"])
    with torch.no_grad():
        for p in hc.parameters():
            p.copy_(torch.where(torch.rand_like(p) < 0.4, -30.0, 30.0))
    for row in range(2):
        g = hc.deterministic(row)
        assert {v.item() for t in g.leaves() for v in t.flatten()} == {0.0, 1.0}
        for scope, kinds in SCOPES.items():
            expected = hc.expected_sparsity(row, kinds).item()
            assert expected == pytest.approx(sparsity(g, UNIT, kinds), abs=1e-6)
            assert expected == pytest.approx(achieved_sparsity(g, UNIT, scope), abs=1e-6)


def test_losses_reach_log_alpha_and_lagrangian_ascends():
    hc = hard_concrete(names=["a", "b"])
    prior = torch.ones(2, 2)
    lagrangian = Lagrangian()
    with torch.no_grad():
        lagrangian.lambda1.fill_(1.0)  # at λ = 0 the Lagrangian form has no gradient yet
    for loss in (
        l0_penalty(hc, SCOPES["all"]),
        sparsity_constraint(hc, 0.5, SCOPES["all"]),
        sparsity_constraint(hc, 0.5, SCOPES["all"], "lagrangian", lagrangian),
        diversity_loss(hc, prior, SCOPES["all"]),
    ):
        hc.zero_grad()
        loss.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in hc.parameters())

    lagrangian = Lagrangian()
    with pytest.raises(ValueError):  # why Lagrangian negates gradients instead
        torch.optim.AdamW(lagrangian.parameters(), lr=-0.1)
    set_log_alpha(hc, -1.0)  # expected sparsity above the target 0.1
    assert (hc.expected_sparsity(None) > 0.1).all()
    optimizer = torch.optim.AdamW(lagrangian.parameters(), lr=0.1, weight_decay=0.0)
    lagrangian.zero_grad()
    before = sparsity_constraint(hc, 0.1, form="lagrangian", lagrangian=lagrangian)
    before.backward()
    optimizer.step()
    after = sparsity_constraint(hc, 0.1, form="lagrangian", lagrangian=lagrangian)
    assert lagrangian.lambda1.item() > 0 and lagrangian.lambda2.item() > 0
    assert after.item() > before.item() == 0.0


@pytest.mark.parametrize("form", ["absolute", "lagrangian"])
def test_constraint_reaches_target_sparsity(form):
    hc = hard_concrete(names=["a", "b"], heads=[2, 2], ffn=[8, 8], emb_rank=None)
    lagrangian = Lagrangian()
    optimizer = torch.optim.Adam(
        [{"params": hc.parameters()}, {"params": lagrangian.parameters()}], lr=0.05
    )
    for _ in range(300):
        optimizer.zero_grad()
        sparsity_constraint(hc, 0.5, form=form, lagrangian=lagrangian).backward()
        optimizer.step()
    reached = hc.expected_sparsity(None)
    assert ((reached - 0.5).abs() < 0.02).all(), reached


def test_diversity_loss_by_hand_with_family_prior():
    hc = hard_concrete(names=["xa", "xb"], heads=[1], ffn=[2], emb_rank=None)
    shift = hc.beta * math.log(11)  # Eq 9: p = sigmoid(log alpha + beta ln 11)
    p = torch.tensor([[0.5, 0.5, 0.5], [0.2, 0.4, 0.8]])
    logit = (p / (1 - p)).log() - shift
    with torch.no_grad():
        hc.heads[0].copy_(logit[:, :1])
        hc.ffn[0].copy_(logit[:, 1:])
    overlap = (0.5 * 0.2 + 0.5 * 0.4 + 0.5 * 0.8) / 3  # 0.7 / 3 components
    ones = family_prior(["xa", "xb"], {"xa": "f", "xb": "g"})
    assert torch.equal(ones, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    assert diversity_loss(hc, ones).item() == pytest.approx(math.sqrt(2) * overlap, abs=1e-6)
    same = family_prior(["xa", "xb"], {"xa": "f", "xb": "f"})
    assert diversity_loss(hc, same).item() == 0.0
    disabled = family_prior(["xa", "xb"], {"xa": "f", "xb": "f"}, enabled=False)
    assert torch.equal(disabled, torch.ones(2, 2))


def test_gates_plug_into_the_model_and_backpropagate():
    cfg = ModelConfig(vocab_size=50, hidden=16, layers=2, heads=2, ffn=24, head_dim=8, emb_rank=16)
    torch.manual_seed(0)
    model = MaskedLM(cfg)
    hc = HardConcreteGates(["a", "b"], cfg.heads, cfg.ffn, cfg.emb_rank, UNIT)
    ids = torch.randint(4, 49, (3, 7))
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    ids[:, 2] = 49
    loss = model(ids, labels=labels, gates=hc(torch.tensor([0, 1, 0])))
    loss.backward()
    grads = [p.grad for p in hc.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
