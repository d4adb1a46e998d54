import pytest
import torch

from polyprune.config import component_weights
from polyprune.gates import Gates
from polyprune.importance import (
    NORMALIZATIONS,
    factorize_embeddings,
    gradient_importance,
    normalize,
)
from polyprune.model import MaskedLM, ModelConfig
from polyprune.prune import (
    achieved_sparsity,
    drop_empty_layers,
    gated_model,
    physically_prune,
    round_widths,
    select_components,
)

CFG = dict(vocab_size=60, hidden=16, layers=3, heads=4, ffn=20, head_dim=4, dropout=0.0)
UNIT = component_weights(4, {})  # head 16, FFN unit 2, embedding rank 1 (units of d)


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return MaskedLM(ModelConfig(**{**CFG, **overrides})).eval()


def masked_batches(n=3, seed=0, vocab=60):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(4, vocab - 1, (4, 10), generator=g)
        labels = torch.full_like(ids, -100)
        pos = torch.rand(ids.shape, generator=g) < 0.3
        labels[pos] = ids[pos]
        ids = ids.masked_fill(pos, vocab - 1)
        out.append((ids, labels))
    return out


def eq4_by_hooks(model, batches, per_token):
    """Eq 4 literally: |component(x) . dL/dcomponent(x)| from captured activations."""
    dh, totals = model.cfg.head_dim, None
    for ids, labels in batches:
        heads, units = [], []

        def keeper(store):
            def keep(_module, args):
                args[0].retain_grad()
                store.append(args[0])

            return keep

        hooks = [layer.attn.out.register_forward_pre_hook(keeper(heads)) for layer in model.layers]
        hooks += [layer.ffn_down.register_forward_pre_hook(keeper(units)) for layer in model.layers]
        model(ids, labels=labels).backward()
        for h in hooks:
            h.remove()
        scores = []
        for i, a in enumerate(heads + units):
            prod = a * a.grad  # (B, T, width)
            if i < len(heads):  # attention: sum each head's dh features
                prod = prod.view(*prod.shape[:2], -1, dh).sum(-1)
            scores.append(prod.abs().sum((0, 1)) if per_token else prod.sum((0, 1)).abs())
        totals = scores if totals is None else [t + s for t, s in zip(totals, scores)]
        model.zero_grad()
    return [t / len(batches) for t in totals]


@pytest.mark.parametrize("granularity", ["batch", "token"])
def test_gradient_importance_equals_independent_autograd(granularity):
    model = tiny_model()
    batches = masked_batches()
    scores, n = gradient_importance(model, batches, granularity)
    expected = eq4_by_hooks(model, batches, per_token=granularity == "token")
    L = model.cfg.layers
    assert n == 3
    for got, want in zip(scores.heads + scores.ffn, expected[:L] + expected[L:]):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)


def test_embedding_rank_importance_by_finite_differences():
    model = factorize_embeddings(tiny_model(seed=1)).double()
    ids, labels = masked_batches(n=1, seed=3)[0]
    scores, _ = gradient_importance(model, [(ids, labels)], "batch")
    r, eps = 5, 1e-6

    def loss_at(value):
        g = Gates.ones(model.cfg.heads, model.cfg.ffn, model.cfg.emb_rank)
        g = Gates([t.double() for t in g.heads], [t.double() for t in g.ffn], g.emb.double())
        g.emb[0, r] = value
        return model(ids, labels=labels, gates=g).item()

    numeric = abs(loss_at(1 + eps) - loss_at(1 - eps)) / (2 * eps)
    assert scores.emb[r].item() == pytest.approx(numeric, rel=1e-5)


def test_factorised_embeddings_keep_outputs():
    model = tiny_model(seed=2)
    ids, _ = masked_batches(n=1)[0]
    torch.testing.assert_close(factorize_embeddings(model)(ids), model(ids), atol=1e-5, rtol=1e-4)


def test_layer_normalisation_gives_unit_norm_per_layer():
    scores, _ = gradient_importance(tiny_model(), masked_batches())
    for t in [*normalize(scores, "layer").heads, *normalize(scores, "layer").ffn]:
        assert t.norm().item() == pytest.approx(1.0)


def test_head_normalisation_evens_layers_and_leaves_ffn_units_as_measured():
    scores, _ = gradient_importance(tiny_model(), masked_batches())
    normalized = normalize(scores, "heads")
    norms = [t.norm().item() for t in normalized.heads]
    mean = sum(t.norm().item() for t in scores.heads) / len(norms)
    assert norms == pytest.approx([mean] * len(norms))
    for before, after in zip(scores.ffn, normalized.ffn, strict=True):
        assert torch.equal(before, after)
    with pytest.raises(ValueError, match="normalize must be one of"):
        normalize(scores, "ffn")


def test_heads_that_score_below_ffn_units_are_pruned_under_the_default_ranking():
    """Hand-made scores: every head scores below every FFN unit. The default (`heads`) prunes
    heads first, as measured; `layer` gives each layer's heads and units unit norm, and with 2
    heads against 8 units per layer a head then outranks every unit: only units are pruned."""
    scores = Gates(
        heads=[torch.tensor([0.001, 0.002]), torch.tensor([0.004, 0.003])],
        ffn=[torch.full((8,), 0.01), torch.full((8,), 0.02)],
    )
    unit = {"heads": 8, "ffn": 2, "emb": 1}  # a head weighs 4 units: total 2 x (16 + 16) = 64
    kept = {how: select_components(normalize(scores, how), unit, 0.25) for how in NORMALIZATIONS}
    heads_kept = {how: [int(t.sum()) for t in g.heads] for how, g in kept.items()}
    ffn_kept = {how: [int(t.sum()) for t in g.ffn] for how, g in kept.items()}
    # the weakest head of each layer once layers are evened (0.0016 and 0.0022 of 0.0036 mean
    # norm); raw scores: the two weakest heads overall
    assert heads_kept["heads"] == [1, 1] and heads_kept["none"] == [0, 2]
    assert ffn_kept["heads"] == ffn_kept["none"] == [8, 8]
    assert heads_kept["layer"] == [2, 2] and sum(ffn_kept["layer"]) == 8


@pytest.mark.parametrize("sparsity", [0.5, 0.3, 0.7, 0.9])
def test_pruning_hits_target_sparsity_exactly(sparsity):
    scores, _ = gradient_importance(tiny_model(), masked_batches())
    gates = select_components(scores, UNIT, sparsity)
    total = 3 * (4 * 16 + 20 * 2)
    step = 2  # FFN units weigh 2: the finest budget granularity
    assert achieved_sparsity(gates, UNIT) == pytest.approx(
        1 - round((1 - sparsity) * total / step) * step / total
    )
    if sparsity == 0.5:
        assert achieved_sparsity(gates, UNIT) == 0.5
    assert all(set(t.unique().tolist()) <= {0.0, 1.0} for t in gates.heads + gates.ffn)


def test_pruning_keeps_the_highest_scores():
    scores, _ = gradient_importance(tiny_model(), masked_batches())
    gates = select_components(scores, UNIT, 0.5, rank_by="score")
    kept = [s for t, g in zip(scores.ffn, gates.ffn) for s, k in zip(t, g) if k]
    dropped = [s for t, g in zip(scores.ffn, gates.ffn) for s, k in zip(t, g) if not k]
    assert min(kept) >= max(dropped)


def test_physically_pruned_model_equals_gated_and_is_smaller():
    base = factorize_embeddings(tiny_model(seed=4))
    scores, _ = gradient_importance(base, masked_batches())
    gates = select_components(scores, UNIT, 0.6, scope="all")
    gates.ffn[1][gates.ffn[1] > 0] = 0.5  # soft gate values are folded into the weights
    gated = gated_model(base, {"shared": gates}).eval()
    small = physically_prune(gated).eval()
    ids, _ = masked_batches(n=1)[0]
    torch.testing.assert_close(small(ids), gated(ids), atol=1e-5, rtol=1e-4)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(small) < count(gated)
    assert small.cfg.heads == [int(t.sum()) for t in gates.heads]


def test_nonshared_gates_differ_with_language_data():
    model = tiny_model(seed=5)
    per_lang = {
        lang: select_components(gradient_importance(model, masked_batches(seed=s))[0], UNIT, 0.5)
        for lang, s in (("xa", 10), ("xb", 11))
    }
    gated = gated_model(model, per_lang)
    a, b = gated.gates_for("xa"), gated.gates_for("xb")
    assert any(not torch.equal(x, y) for x, y in zip(a.ffn + a.heads, b.ffn + b.heads))
    with pytest.raises(ValueError, match="pass gate_set"):
        gated(masked_batches(n=1)[0][0])


def test_hardware_friendly_widths_round_each_layer_to_its_multiple_by_score():
    gates = Gates(
        heads=[torch.tensor([1.0, 1, 1, 0]), torch.tensor([1.0, 0, 0, 0])],
        ffn=[torch.tensor([1.0] * 13 + [0.0] * 7), torch.tensor([1.0] * 3 + [0.0] * 17)],
    )
    scores = Gates(
        heads=[torch.tensor([0.1, 0.9, 0.5, 0.7]), torch.tensor([0.3, 0.2, 0.1, 0.0])],
        ffn=[torch.arange(20.0), torch.arange(20.0).flip(0)],
    )
    friendly = round_widths(gates, scores, heads_multiple=2, ffn_multiple=8)
    # 3 heads -> 4 (3/2 = 1.5 rounds up), 1 head -> 2; 13 units -> 16, 3 units -> 0
    assert friendly.heads[0].tolist() == [1, 1, 1, 1] and friendly.heads[1].tolist() == [1, 1, 0, 0]
    assert friendly.ffn[0].tolist() == [0.0] * 4 + [1.0] * 16  # the 16 highest scores
    assert friendly.ffn[1].count_nonzero() == 0


def test_a_layer_with_nothing_kept_is_dropped_and_the_others_keep_their_weights():
    model = tiny_model()
    gates = Gates(
        heads=[torch.ones(1, 4), torch.zeros(1, 4), torch.tensor([[1.0, 0, 1, 0]])],
        ffn=[torch.ones(1, 20), torch.zeros(1, 20), torch.ones(1, 20)],
    )
    small = physically_prune(gated_model(model, {"shared": gates})).eval()
    dropped = drop_empty_layers(small).eval()
    assert dropped.cfg.layers == 2 and dropped.cfg.heads == [4, 2] and dropped.cfg.ffn == [20, 20]
    assert torch.equal(dropped.layers[1].ffn_up.weight, small.layers[2].ffn_up.weight)
    ids = torch.randint(4, 59, (2, 6))
    reference = small.layers[2](small.layers[0](small.embed(ids), None), None)
    assert torch.allclose(dropped.encode(ids), reference, atol=1e-6)


def test_one_languages_subnetwork_is_a_smaller_model_with_its_outputs():
    from polyprune.prune import subnetwork

    model = tiny_model()
    g = torch.Generator().manual_seed(1)
    sets = {
        lang: Gates(
            heads=[(torch.rand(1, 4, generator=g) > 0.4).float() for _ in range(3)],
            ffn=[(torch.rand(1, 20, generator=g) > 0.5).float() for _ in range(3)],
        )
        for lang in ("aa", "bb")
    }
    gated = gated_model(model, sets).eval()
    ids = torch.randint(4, 59, (2, 6))
    small = subnetwork(gated, "bb").eval()
    assert small.gate_table is None and small.cfg.ffn == [int(f.sum()) for f in sets["bb"].ffn]
    assert torch.allclose(small.encode(ids), gated.encode(ids, gate_set="bb"), atol=1e-5)


def test_throughput_rows_hold_each_models_cpu_timings_and_leave_threads_alone():
    from polyprune.bench import throughput_table

    models = {"dense": tiny_model(), "small": tiny_model(1, heads=2, ffn=8)}
    threads = torch.get_num_threads()
    spec = dict(seq_len=8, cpu_batch=1, cpu_threads=1, gpu_batch=4, warmup=1, repeats=5)
    rows = throughput_table(models, spec, reference="dense")
    assert [r["model"] for r in rows] == ["dense", "small"] and torch.get_num_threads() == threads
    for r in rows:
        cpu = r["cpu"]
        assert cpu["threads"] == 1 and cpu["batch"] == 1 and r["seq_len"] == 8
        assert cpu["seconds_q1"] <= cpu["seconds_median"] <= cpu["seconds_q3"]
        assert cpu["sequences_per_s"] == pytest.approx(1 / cpu["seconds_median"])
