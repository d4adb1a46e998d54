import hashlib
import json
import subprocess
import sys

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, XLMRobertaConfig, XLMRobertaForMaskedLM

from polyprune.gates import Gates
from polyprune.model import (
    CheckpointError,
    MaskedLM,
    ModelConfig,
    from_hf_state_dict,
    load_model,
    save_model,
    to_hf_state_dict,
)

TINY_HF = dict(
    vocab_size=97,
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=48,
    max_position_embeddings=40,
    type_vocab_size=1,
    layer_norm_eps=1e-5,
)


def tiny_batch(vocab=97, pad=1):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (3, 12), generator=g)
    ids[:, 0] = 0
    ids[1, 8:] = pad  # padded rows exercise the attention mask and RoBERTa positions
    ids[2, 5:] = pad
    return ids, ids.ne(pad).long()


TINY_BERT = dict(TINY_HF, type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0)


def bert_batch():
    """Padded rows with BERT's [CLS] A [SEP] B [SEP] segments (token types 0, then 1)."""
    ids, mask = tiny_batch(pad=0)
    types = torch.zeros_like(ids)
    for row, first_b in enumerate([6, 4, 3]):
        types[row, first_b:] = mask[row, first_b:]
    return ids, mask, types


def test_bert_logits_equal_transformers():
    torch.manual_seed(0)
    hf = BertForMaskedLM(BertConfig(**TINY_BERT)).eval()
    cfg = ModelConfig.from_hf(hf.config)
    assert (cfg.layout, cfg.pad_id, cfg.type_vocab) == ("bert", 0, 2)
    ours = from_hf_state_dict(hf.state_dict(), cfg).eval()
    ids, mask, types = bert_batch()
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        got = ours(ids, mask, token_types=types)
        without_types = ours(ids, mask)
    keep = mask.bool()
    assert (got[keep] - expected[keep]).abs().max().item() <= 1e-5
    assert (without_types[keep] - expected[keep]).abs().max().item() > 1e-3  # types matter


def test_bert_state_dict_round_trips_into_transformers():
    torch.manual_seed(1)
    ours = MaskedLM(ModelConfig.from_hf(BertConfig(**TINY_BERT))).eval()
    hf = BertForMaskedLM(BertConfig(**TINY_BERT)).eval()
    hf.load_state_dict(to_hf_state_dict(ours), strict=True)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hf.parameters())
    ids, mask, types = bert_batch()
    with torch.no_grad():
        diff = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        diff -= ours(ids, mask, token_types=types)
    assert diff[mask.bool()].abs().max().item() <= 1e-5


def test_bert_positions_start_at_zero_and_use_every_position():
    model = MaskedLM(ModelConfig.from_hf(BertConfig(**TINY_BERT)))
    ids, _, _ = bert_batch()
    assert model.embed.position_ids(ids).tolist() == [list(range(ids.shape[1]))]
    assert model.embed.positions.weight[0].abs().max() > 0  # not a padding row, as in XLM-R
    assert model.cfg.max_tokens == TINY_BERT["max_position_embeddings"]
    xlmr = ModelConfig.from_hf(XLMRobertaConfig(**TINY_HF, pad_token_id=1))
    assert xlmr.max_tokens == TINY_HF["max_position_embeddings"] - 2


def test_a_model_type_without_a_layout_is_refused():
    from transformers import DistilBertConfig

    with pytest.raises(ValueError, match="model type 'distilbert'"):
        ModelConfig.from_hf(DistilBertConfig(activation="gelu", hidden_act="gelu"))


def test_logits_equal_transformers():
    torch.manual_seed(0)
    hf = XLMRobertaForMaskedLM(XLMRobertaConfig(**TINY_HF)).eval()
    ours = from_hf_state_dict(hf.state_dict(), ModelConfig.from_hf(hf.config)).eval()
    ids, mask = tiny_batch()
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask).logits
        got = ours(ids, mask)
    keep = mask.bool()
    assert (got[keep] - expected[keep]).abs().max().item() <= 1e-5


def test_state_dict_round_trips_into_transformers():
    torch.manual_seed(1)
    ours = MaskedLM(ModelConfig.from_hf(XLMRobertaConfig(**TINY_HF))).eval()
    hf = XLMRobertaForMaskedLM(XLMRobertaConfig(**TINY_HF)).eval()
    hf.load_state_dict(to_hf_state_dict(ours), strict=True)
    ids, mask = tiny_batch()
    with torch.no_grad():
        diff = hf(input_ids=ids, attention_mask=mask).logits - ours(ids, mask)
    assert diff[mask.bool()].abs().max().item() <= 1e-5


@pytest.mark.parametrize("std", [0.02, 0.05])
def test_initialisation_follows_init_std(std):
    torch.manual_seed(0)
    model = MaskedLM(ModelConfig.from_hf(XLMRobertaConfig(**TINY_HF, initializer_range=std)))
    weights = torch.cat(
        [model.embed.tokens.weight[2:].flatten(), model.layers[0].ffn_up.weight.flatten()]
    )
    assert weights.std().item() == pytest.approx(std, rel=0.05)
    assert model.embed.tokens.weight[1].abs().max() == 0  # the padding embedding


def test_mlm_loss_matches_full_logits():
    torch.manual_seed(2)
    model = MaskedLM(ModelConfig(vocab_size=50, hidden=16, layers=2, heads=2, ffn=24, head_dim=8))
    model.eval()
    ids, mask = tiny_batch(vocab=50)
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 2], labels[2, 4] = 7, 9, 11
    logits = model(ids, mask)
    expected = torch.nn.functional.cross_entropy(logits.view(-1, 50), labels.view(-1))
    assert torch.allclose(model(ids, mask, labels=labels), expected, atol=1e-6)


def random_gates(cfg, rows, generator, per_token=None):
    """Gates in (0, 1): one set for the batch (rows=1), one per example, or (per_token: T) one
    per token, as importance scoring uses."""
    shape = (rows,) if per_token is None else (rows, per_token)

    def draw(n):
        return torch.rand(*shape, n, generator=generator).requires_grad_()

    return Gates([draw(h) for h in cfg.heads], [draw(f) for f in cfg.ffn], draw(cfg.emb_rank))


@pytest.mark.parametrize("kind", ["none", "shared", "per-example", "per-token"])
def test_the_mlm_loss_computes_only_masked_positions_in_the_last_layer_and_changes_nothing(kind):
    torch.manual_seed(4)
    cfg = ModelConfig(vocab_size=50, hidden=16, layers=3, heads=2, ffn=24, head_dim=8, emb_rank=16)
    model = MaskedLM(cfg).eval()
    ids, mask = tiny_batch(vocab=50)
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[0, 9], labels[1, 2], labels[2, 4] = 7, 8, 9, 11
    g = torch.Generator().manual_seed(5)
    rows, per_token = {"shared": (1, None), "per-example": (3, None), "per-token": (3, 12)}.get(
        kind, (None, None)
    )
    gates = None if rows is None else random_gates(cfg, rows, g, per_token)
    leaves = [*model.parameters(), *([] if gates is None else gates.leaves())]

    def loss_and_grads(loss):
        return loss.detach(), torch.autograd.grad(loss, leaves, allow_unused=True)

    logits = model(ids, mask, gates=gates)  # every position of every layer
    full = loss_and_grads(torch.nn.functional.cross_entropy(logits.view(-1, 50), labels.view(-1)))
    kept = loss_and_grads(model(ids, mask, labels=labels, gates=gates))
    assert torch.allclose(kept[0], full[0], atol=1e-6)
    for a, b in zip(kept[1], full[1]):
        if a is None or b is None:  # e.g. the last layer's gates at unmasked tokens: no gradient
            assert a is None or not a.any()
            assert b is None or not b.any()
        else:
            assert torch.allclose(a, b, atol=1e-6)


def test_a_shallower_encoding_is_the_first_layers_of_the_full_one():
    torch.manual_seed(6)
    cfg = ModelConfig(vocab_size=50, hidden=16, layers=3, heads=2, ffn=24, head_dim=8)
    model = MaskedLM(cfg).eval()
    ids, mask = tiny_batch(vocab=50)
    full = model.encode(ids, mask, all_layers=True)
    for depth in range(4):
        shallow = model.encode(ids, mask, all_layers=True, depth=depth)
        assert len(shallow) == depth + 1
        assert all(torch.equal(a, b) for a, b in zip(shallow, full))


def test_all_one_gates_change_nothing_and_zero_gates_do():
    torch.manual_seed(3)
    cfg = ModelConfig(vocab_size=50, hidden=16, layers=2, heads=2, ffn=24, head_dim=8, emb_rank=16)
    model = MaskedLM(cfg).eval()
    ids, mask = tiny_batch(vocab=50)
    ones = Gates.ones(cfg.heads, cfg.ffn, cfg.emb_rank)
    assert torch.equal(model(ids, mask), model(ids, mask, gates=ones))
    ones.ffn[0][0, :5] = 0
    assert not torch.allclose(model(ids, mask), model(ids, mask, gates=ones))


def test_checkpoint_round_trip_and_truncation(tmp_path):
    cfg = ModelConfig(vocab_size=50, hidden=16, layers=2, heads=[2, 1], ffn=[24, 0], head_dim=8)
    model = MaskedLM(cfg).eval()
    save_model(model, tmp_path / "ckpt")
    again = load_model(tmp_path / "ckpt").eval()
    ids, mask = tiny_batch(vocab=50)
    assert torch.equal(model(ids, mask), again(ids, mask))
    weights = tmp_path / "ckpt" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        load_model(tmp_path / "ckpt")


def test_our_parameter_count_matches_transformers():
    hf_cfg = XLMRobertaConfig(**TINY_HF)
    ours = MaskedLM(ModelConfig.from_hf(hf_cfg))
    hf = XLMRobertaForMaskedLM(hf_cfg)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hf.parameters())


def small_checkpoint(directory) -> MaskedLM:
    torch.manual_seed(0)
    model = MaskedLM(ModelConfig(vocab_size=50, hidden=16, layers=1, heads=2, ffn=8, head_dim=8))
    save_model(model, directory)
    return model.eval()


def test_random_bytes_in_the_weights_are_refused(tmp_path):
    small_checkpoint(tmp_path / "ckpt")
    weights = tmp_path / "ckpt" / "model.safetensors"
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert meta["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    damaged = bytearray(weights.read_bytes())
    damaged[-16:] = b"\xff" * 16  # tensor data (NaNs), the header stays valid
    weights.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: sha256 differs") as info:
        load_model(tmp_path / "ckpt")
    assert str(weights) in str(info.value) and "\n" not in str(info.value)


def test_a_checkpoint_without_a_digest_still_loads(tmp_path):
    model = small_checkpoint(tmp_path / "ckpt")
    config = tmp_path / "ckpt" / "config.json"
    meta = json.loads(config.read_text())
    del meta["weights_sha256"]
    config.write_text(json.dumps(meta))
    ids, mask = tiny_batch(vocab=50)
    assert torch.equal(model(ids, mask), load_model(tmp_path / "ckpt").eval()(ids, mask))


def test_encoder_flops_by_hand():
    from polyprune.bench import encoder_flops

    cfg = ModelConfig(vocab_size=10, hidden=8, layers=2, heads=[2, 1], ffn=[16, 4], head_dim=4)
    # per token: layer 0 4*8*2*4 + 2*5*2*4 + 2*8*16 = 256 + 80 + 256; layer 1 128 + 40 + 64
    assert encoder_flops(cfg, 5) == 2 * 5 * (592 + 232)


def test_a_local_bert_checkpoint_converts_with_its_origin(tmp_path):
    from polyprune.model import convert_hf, read_checkpoint_meta

    torch.manual_seed(4)
    hf = BertForMaskedLM(BertConfig(**TINY_BERT)).eval()
    hf.save_pretrained(tmp_path / "hub")
    convert_hf(str(tmp_path / "hub"), None, tmp_path / "ours", {"note": "x"})
    ours = load_model(tmp_path / "ours").eval()
    meta = read_checkpoint_meta(tmp_path / "ours")
    assert meta["origin"] == {"hub_or_path": str(tmp_path / "hub"), "revision": None}
    assert meta["note"] == "x" and ours.cfg.layout == "bert"
    ids, mask, types = bert_batch()
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        diff = ours(ids, mask, token_types=types) - expected
    assert diff[mask.bool()].abs().max().item() <= 1e-5


def test_a_model_is_built_and_loaded_without_importing_sympy(tmp_path):
    # torch's skip_init and the meta device import sympy on first use: 0.6 s of every job
    save_model(
        MaskedLM(ModelConfig(vocab_size=11, hidden=8, layers=1, heads=2, ffn=4, head_dim=4)),
        tmp_path,
    )
    code = (
        "import sys\n"
        "from polyprune.model import load_model\n"
        f"load_model({str(tmp_path)!r})\n"
        "assert 'sympy' not in sys.modules, 'sympy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_linear_layer_is_initialised_once_by_the_model():
    torch.manual_seed(0)
    model = MaskedLM(
        ModelConfig(vocab_size=11, hidden=64, layers=2, heads=[4, 2], ffn=[256, 0], head_dim=16)
    )
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    weights = torch.cat([m.weight.flatten() for m in linear])
    assert weights.std().item() == pytest.approx(model.cfg.init_std, rel=0.05)
    assert all(m.bias is None or not m.bias.any() for m in linear)
