import math

import pytest
import torch

from polyprune.distil import distil_step_loss, distillation_loss, student_from_teacher
from polyprune.gates import Gates
from polyprune.model import MaskedLM, ModelConfig, load_model, save_model
from polyprune.prune import gated_model

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = dict(vocab_size=40, hidden=16, layers=4, heads=[4, 3, 2, 1], ffn=[20, 16, 12, 8], head_dim=4)
DISTILBERT = dict(temperature=2.0, alpha_ce=5.0, alpha_mlm=2.0)


def tiny_teacher(seed=0, **overrides):
    torch.manual_seed(seed)
    return MaskedLM(ModelConfig(**{**CFG, "dropout": 0.0, "attention_dropout": 0.0, **overrides}))


def masked_batch(seed=0, vocab=40):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab - 1, (4, 10), generator=g)
    labels = torch.full_like(ids, -100)
    pos = torch.rand(ids.shape, generator=g) < 0.3
    pos[:, 1] = True  # every row has a masked token
    labels[pos] = ids[pos]
    ids = ids.masked_fill(pos, vocab - 1)
    mask = torch.ones_like(ids)
    ids[3, 7:], mask[3, 7:], labels[3, 7:] = 1, 0, -100  # a padded row
    return ids, mask, labels


def test_student_takes_every_other_layer_and_round_trips(tmp_path):
    teacher = tiny_teacher()
    student = student_from_teacher(teacher)
    assert student.cfg.layers == 2
    assert (student.cfg.heads, student.cfg.ffn) == ([4, 2], [20, 12])
    t, s = teacher.state_dict(), student.state_dict()
    for key, value in s.items():
        layer = key.split(".")[1] if key.startswith("layers.") else None
        source = key.replace(f"layers.{layer}.", f"layers.{2 * int(layer)}.") if layer else key
        assert torch.equal(value, t[source]), key
    assert any(k.startswith("embed.") for k in s) and any(k.startswith("head.") for k in s)

    save_model(student, tmp_path / "student")
    again = load_model(tmp_path / "student").eval()
    ids, mask, _ = masked_batch()
    assert torch.equal(again(ids, mask), student.eval()(ids, mask))


def test_layers_to_keep_are_checked():
    teacher = tiny_teacher()
    assert student_from_teacher(teacher, [1, 3]).cfg.heads == [3, 1]
    for bad in ([], [2, 0], [0, 0], [0, 4], [-1, 2], "every_third"):
        with pytest.raises(ValueError, match="keep"):
            student_from_teacher(teacher, bad)


def test_distillation_loss_by_hand():
    student = torch.tensor([[[1.0, 2.0, 3.0]]], requires_grad=True)
    teacher = torch.tensor([[[3.0, 1.0, 0.0]]], requires_grad=True)
    labels = torch.tensor([[2]])
    T = 2.0

    def softmax(xs):
        e = [math.exp(x / T) for x in xs]
        return [v / sum(e) for v in e]

    p, q = softmax([3.0, 1.0, 0.0]), softmax([1.0, 2.0, 3.0])
    expected = T**2 * sum(a * math.log(a / b) for a, b in zip(p, q))
    loss = distillation_loss(student, teacher, labels, T)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert loss.item() > 0
    assert distillation_loss(teacher, teacher, labels, T).item() == pytest.approx(0, abs=1e-7)
    loss.backward()
    assert teacher.grad is None and student.grad is not None


def test_distillation_loss_scales_with_t_squared():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 5, 7, generator=g), torch.randn(2, 5, 7, generator=g)
    labels = torch.zeros(2, 5, dtype=torch.long)
    at_one = distillation_loss(s, t, labels, 1.0)
    for T in (2.0, 4.0):  # the same distributions, scaled by T^2
        assert distillation_loss(s * T, t * T, labels, T).item() == pytest.approx(
            T**2 * at_one.item(), rel=1e-5
        )


def test_distillation_positions():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(1, 4, 7, generator=g)
    s = t.clone()
    s[0, 1] += torch.randn(7, generator=g)  # differs at an unmasked position only
    labels = torch.tensor([[-100, -100, 3, -100]])
    assert distillation_loss(s, t, labels, 2.0, mask_only=True).item() == pytest.approx(0, abs=1e-6)
    assert distillation_loss(s, t, labels, 2.0).item() > 0
    s[0, 1], s[0, 3] = t[0, 1], t[0, 3] + 1.0  # now at a padding position only
    padded = torch.tensor([[1, 1, 1, 0]])
    assert distillation_loss(s, t, labels, 2.0, attention_mask=padded).item() == pytest.approx(
        0, abs=1e-6
    )


def test_step_loss_trains_the_student_only():
    teacher = tiny_teacher()
    student = student_from_teacher(teacher)
    gates = Gates.ones(student.cfg.heads, student.cfg.ffn, None, requires_grad=True)
    ids, mask, labels = masked_batch()
    total, parts = distil_step_loss(
        student, teacher, ids, labels, attention_mask=mask, gates=gates, **DISTILBERT
    )
    total.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None for p in student.parameters())
    assert all(leaf.grad is not None for leaf in gates.leaves())
    assert parts["total"] == pytest.approx(5.0 * parts["ce"] + 2.0 * parts["mlm"], rel=1e-6)
    assert parts["mlm"] == pytest.approx(student(ids, mask, labels=labels).item(), rel=1e-6)
    assert not teacher.training


def test_a_few_steps_lower_the_distillation_loss():
    teacher = tiny_teacher(init_std=0.3)  # peaked teacher distributions
    student = student_from_teacher(teacher).train()
    ids, mask, labels = masked_batch(seed=1)
    losses = []
    for _ in range(10):  # soft targets only: one batch's MLM labels pull away from the teacher
        total, parts = distil_step_loss(
            student,
            teacher,
            ids,
            labels,
            attention_mask=mask,
            temperature=2.0,
            alpha_ce=1.0,
            alpha_mlm=0.0,
        )
        student.zero_grad()
        total.backward()
        with torch.no_grad():  # plain gradient descent: torch.optim's first use costs seconds
            for p in student.parameters():
                p -= 0.1 * p.grad
        losses.append(parts["ce"])
    assert losses[-1] < 0.5 * losses[0]


def test_a_nonshared_gated_teacher_passes_its_gate_rows_and_runs_per_language():
    base = tiny_teacher(emb_rank=8)
    g = torch.Generator().manual_seed(0)

    def random_gates():
        def bits(n):
            return torch.randint(0, 2, (n,), generator=g).float()

        return Gates([bits(h) for h in CFG["heads"]], [bits(f) for f in CFG["ffn"]], bits(8))

    teacher = gated_model(base, {"xa": random_gates(), "xb": random_gates()})
    student = student_from_teacher(teacher)
    assert student.gate_table.names == ["xa", "xb"]
    for lang in ("xa", "xb"):
        t, s = teacher.gates_for(lang), student.gates_for(lang)
        for i, j in ((0, 0), (1, 2)):
            assert torch.equal(s.heads[i], t.heads[j]) and torch.equal(s.ffn[i], t.ffn[j])
        assert torch.equal(s.emb, t.emb)

    ids, mask, labels = masked_batch()
    _, parts = distil_step_loss(
        student, teacher, ids, labels, attention_mask=mask, lang="xb", **DISTILBERT
    )
    with torch.no_grad():
        by_hand = distillation_loss(
            student(ids, mask, gate_set="xb"),
            teacher(ids, mask, gate_set="xb"),
            labels,
            2.0,
            attention_mask=mask,
        )
    assert parts["ce"] == pytest.approx(by_hand.item(), rel=1e-6)
    with pytest.raises(KeyError, match="no gate set None"):
        distil_step_loss(student, teacher, ids, labels, attention_mask=mask, **DISTILBERT)
