"""An XLM-R or BERT encoder with an MLM head, gates (Eqs 1-3) and per-layer sizes.

State-dict compatible with transformers' XLMRobertaForMaskedLM and BertForMaskedLM through
`to_hf_state_dict` / `from_hf_state_dict` (same tensors, our own short names). The two layouts
differ only in positions (RoBERTa's count non-padding tokens from pad_id + 1, BERT's are 0..T-1),
in the token types BERT uses (segment A = 0, B = 1) and in transformers' key names. Every layer
takes its own head count and FFN width, so a physically pruned model is just a smaller instance of
the same class. Gates come either from the model's `GateTable` (fixed sets: one shared, or one per
language) or from the caller (importance scoring, learned gates).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from polyprune.config import SHAPES
from polyprune.errors import CheckpointError
from polyprune.gates import Gates, GateTable, per_language

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "polyprune-mlm-1"
LAYOUTS = ("xlmr", "bert")
# transformers' model_type -> our layout
HF_LAYOUTS = {"xlm-roberta": "xlmr", "roberta": "xlmr", "bert": "bert"}


@dataclass
class ModelConfig:
    vocab_size: int
    hidden: int = 768
    layers: int = 12
    heads: int | list[int] = 12
    ffn: int | list[int] = 3072
    head_dim: int = 64
    max_positions: int = 514
    type_vocab: int = 1
    pad_id: int = 1
    layer_norm_eps: float = 1e-5
    dropout: float = 0.1
    attention_dropout: float = 0.1
    emb_rank: int | None = None
    init_std: float = 0.02  # transformers' initializer_range
    gate_sets: list[str] = field(default_factory=list)
    layout: str = "xlmr"

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; known: {LAYOUTS}")
        if isinstance(self.heads, int):
            self.heads = [self.heads] * self.layers
        if isinstance(self.ffn, int):
            self.ffn = [self.ffn] * self.layers
        if len(self.heads) != self.layers or len(self.ffn) != self.layers:
            raise ValueError(f"heads and ffn need one entry per layer ({self.layers})")

    @property
    def max_tokens(self) -> int:
        """Longest sequence the position embeddings allow (RoBERTa's start after pad_id)."""
        return self.max_positions - (self.pad_id + 1 if self.layout == "xlmr" else 0)

    @classmethod
    def from_config_shape(cls, shape: dict, vocab_size: int, **overrides) -> ModelConfig:
        """A config file's `model.shape` (hidden, layers, heads, ffn, max_positions; dropout and
        init_std where given) with a tokenizer's vocabulary."""
        dropout = shape.get("dropout", 0.1)
        values = {
            "vocab_size": vocab_size,
            "head_dim": shape["hidden"] // shape["heads"],
            "dropout": dropout,
            "attention_dropout": dropout,
            "init_std": shape.get("init_std", 0.02),
            **{k: shape[k] for k in ("hidden", "layers", "heads", "ffn", "max_positions")},
        }
        return cls(**{**values, **overrides})

    @classmethod
    def from_shape(cls, name: str, **overrides) -> ModelConfig:
        if name not in SHAPES:
            raise KeyError(f"unknown shape {name!r}; known: {sorted(SHAPES)}")
        shape = SHAPES[name]
        return cls(**shape, head_dim=shape["hidden"] // shape["heads"], **overrides)

    @classmethod
    def from_hf(cls, hf) -> ModelConfig:
        if hf.hidden_act != "gelu":
            raise ValueError(f"only GELU encoders are supported, got {hf.hidden_act!r}")
        if hf.model_type not in HF_LAYOUTS:
            raise ValueError(f"model type {hf.model_type!r}; supported: {sorted(HF_LAYOUTS)}")
        if getattr(hf, "position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"only absolute positions, got {hf.position_embedding_type!r}")
        return cls(
            vocab_size=hf.vocab_size,
            hidden=hf.hidden_size,
            layers=hf.num_hidden_layers,
            heads=hf.num_attention_heads,
            ffn=hf.intermediate_size,
            head_dim=hf.hidden_size // hf.num_attention_heads,
            max_positions=hf.max_position_embeddings,
            type_vocab=hf.type_vocab_size,
            pad_id=hf.pad_token_id,
            layer_norm_eps=hf.layer_norm_eps,
            dropout=hf.hidden_dropout_prob,
            attention_dropout=hf.attention_probs_dropout_prob,
            init_std=hf.initializer_range,
            layout=HF_LAYOUTS[hf.model_type],
        )


def _over_tokens(gate: torch.Tensor) -> torch.Tensor:
    """(B, n) gates apply to every token; (B, T, n) gates are per token (importance scoring)."""
    return gate[:, None, :] if gate.dim() == 2 else gate


class _Linear(nn.Linear):
    """nn.Linear left uninitialised: the model initialises every weight itself (_init_weights).
    torch's skip_init would do the same through the meta device, whose first use imports sympy
    (0.6 s of every job)."""

    def reset_parameters(self) -> None:
        pass


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, n_heads: int):
        super().__init__()
        inner = n_heads * cfg.head_dim
        self.n_heads, self.head_dim = n_heads, cfg.head_dim
        self.query = _Linear(cfg.hidden, inner)
        self.key = _Linear(cfg.hidden, inner)
        self.value = _Linear(cfg.hidden, inner)
        self.out = _Linear(inner, cfg.hidden)
        self.dropout = cfg.attention_dropout

    def forward(self, x, mask, gate, queries=None):
        """`queries`: the states of the positions whose outputs are wanted, (B, Q, hidden); by
        default every position of `x`."""
        queries = x if queries is None else queries
        q = self._split(self.query(queries))
        k, v = self._split(self.key(x)), self._split(self.value(x))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        if gate is not None:
            y = y * _over_tokens(gate).transpose(1, 2)[..., None]
        return self.out(y.transpose(1, 2).reshape(*queries.shape[:2], -1))

    def _split(self, t):
        return t.view(*t.shape[:2], self.n_heads, self.head_dim).transpose(1, 2)


class Layer(nn.Module):
    def __init__(self, cfg: ModelConfig, n_heads: int, ffn: int):
        super().__init__()
        self.attn = Attention(cfg, n_heads)
        self.attn_norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.ffn_up = _Linear(cfg.hidden, ffn)
        self.ffn_down = _Linear(ffn, cfg.hidden)
        self.ffn_norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, mask, head_gate=None, ffn_gate=None, positions=None):
        """With `positions` ((B, Q) indices), the outputs at those positions only."""
        queries = x
        if positions is not None:
            queries = _at(x, positions)
            head_gate, ffn_gate = _at(head_gate, positions), _at(ffn_gate, positions)
        x = self.attn_norm(queries + self.drop(self.attn(x, mask, head_gate, queries)))
        h = F.gelu(self.ffn_up(x))
        if ffn_gate is not None:
            h = h * _over_tokens(ffn_gate)
        return self.ffn_norm(x + self.drop(self.ffn_down(h)))


def _at(t: torch.Tensor | None, positions: torch.Tensor) -> torch.Tensor | None:
    """Hidden states or per-token gates (B, T, n) at `positions` (B, Q); a gate per example or
    per batch (2-d) applies at every position as it is."""
    if t is None or t.dim() == 2:
        return t
    return t.gather(1, positions[..., None].expand(-1, -1, t.shape[-1]))


def _kept_positions(keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The kept positions of every row of `keep` (B, T), ascending and padded to the longest
    row: (positions (B, Q), valid (B, Q)); states[valid] are then in `keep`'s row-major order."""
    counts = keep.sum(1)
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    width = int(counts.max())
    valid = torch.arange(width, device=keep.device) < counts[:, None]
    return order[:, :width], valid


class Embeddings(nn.Module):
    """Word + position + token-type embeddings. With `emb_rank`, the word embedding is factorised
    as E = Ê diag(G_emb) P (Eq 3): `tokens` holds Ê (v x r), `proj` holds P (r x d)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.pad_id, self.layout = cfg.pad_id, cfg.layout
        factorised = cfg.emb_rank is not None  # rank 0: every rank pruned, no word vectors
        self.tokens = nn.Embedding(
            cfg.vocab_size, cfg.emb_rank if factorised else cfg.hidden, padding_idx=cfg.pad_id
        )
        self.proj = _Linear(cfg.emb_rank, cfg.hidden, bias=False) if factorised else None
        position_pad = cfg.pad_id if cfg.layout == "xlmr" else None  # BERT's position 0 is used
        self.positions = nn.Embedding(cfg.max_positions, cfg.hidden, padding_idx=position_pad)
        self.token_types = nn.Embedding(cfg.type_vocab, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def word_vectors(self, input_ids, gate=None):
        e = self.tokens(input_ids)
        if self.proj is None:
            return e
        if gate is not None:
            e = e * _over_tokens(gate)
        return self.proj(e)

    def forward(self, input_ids, gate=None, token_types=None):
        x = self.word_vectors(input_ids, gate) + self.positions(self.position_ids(input_ids))
        if token_types is None:
            x = x + self.token_types.weight[0]
        else:
            x = x + self.token_types(token_types)
        return self.drop(self.norm(x))

    def position_ids(self, input_ids):
        if self.layout == "bert":
            return torch.arange(input_ids.shape[1], device=input_ids.device)[None]
        # RoBERTa's: count non-padding tokens, starting after the padding index
        not_pad = input_ids.ne(self.pad_id).long()
        return torch.cumsum(not_pad, dim=1) * not_pad + self.pad_id


class MLMHead(nn.Module):
    """dense -> GELU -> LayerNorm -> tied decoder (through the factorised embedding if any)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.dense = _Linear(cfg.hidden, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, h, embed: Embeddings, emb_gate=None):
        x = self.norm(F.gelu(self.dense(h)))
        if embed.proj is not None:
            x = x @ embed.proj.weight
            if emb_gate is not None:
                x = x * emb_gate
        return x @ embed.tokens.weight.T + self.bias


class MaskedLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = Embeddings(cfg)
        self.layers = nn.ModuleList(Layer(cfg, h, f) for h, f in zip(cfg.heads, cfg.ffn))
        self.head = MLMHead(cfg)
        self.gate_table = (
            GateTable(cfg.gate_sets, cfg.heads, cfg.ffn, cfg.emb_rank) if cfg.gate_sets else None
        )
        self.apply(partial(_init_weights, std=cfg.init_std))

    def gate_set_of(self, lang: str) -> int | None:
        """The gate set that text in `lang` runs with: its own where the model has one per
        language (non-shared), else None (the shared set, or no gates)."""
        table = self.gate_table
        if table is None or not per_language(table.names):
            return None
        return table.index(lang)

    def gates_for(self, gate_set=None) -> Gates | None:
        """The stored gates of `gate_set` (a name, an index, or a (B,) tensor of indices)."""
        if self.gate_table is None:
            if gate_set is not None:
                raise ValueError("this model has no gate sets")
            return None
        if gate_set is None:
            if per_language(self.gate_table.names):
                raise ValueError(
                    f"this model has one gate set per language {self.gate_table.names}: "
                    "pass gate_set"
                )
            gate_set = 0
        if isinstance(gate_set, str):
            gate_set = self.gate_table.index(gate_set)
        return self.gate_table.select(gate_set)

    def encode(
        self,
        input_ids,
        attention_mask=None,
        gate_set=None,
        gates=None,
        all_layers=False,
        token_types=None,
        positions=None,
        depth=None,
    ):
        """Hidden states of the last layer, or (all_layers) of the embeddings and every layer;
        with `depth`, of the first `depth` layers only (retrieval reads a middle layer).
        With `positions` ((B, Q) indices: where a loss reads the states), the last layer
        computes those positions only, (B, Q, hidden): its other outputs would feed nothing."""
        g = gates if gates is not None else self.gates_for(gate_set)
        mask = None if attention_mask is None else attention_mask[:, None, None, :].bool()
        x = self.embed(input_ids, g.emb if g else None, token_types)
        states = [x]
        layers = self.layers if depth is None else self.layers[:depth]
        last = len(layers) - 1
        for i, layer in enumerate(layers):
            wanted = positions if i == last else None
            x = layer(x, mask, g.heads[i] if g else None, g.ffn[i] if g else None, wanted)
            states.append(x)
        return states if all_layers else x

    def forward(
        self,
        input_ids,
        attention_mask=None,
        labels=None,
        gate_set=None,
        gates=None,
        token_types=None,
    ):
        """MLM logits, or with `labels` (-100 = not masked) the mean cross-entropy over the
        masked positions, computed on those positions only."""
        g = gates if gates is not None else self.gates_for(gate_set)
        emb_gate = g.emb if g else None
        if labels is None:
            h = self.encode(input_ids, attention_mask, gates=g, token_types=token_types)
            return self.head(h, self.embed, None if emb_gate is None else _over_tokens(emb_gate))
        selected = labels.ne(-100)
        positions, valid = _kept_positions(selected)
        h = self.encode(
            input_ids, attention_mask, gates=g, token_types=token_types, positions=positions
        )[valid]
        if emb_gate is not None and emb_gate.dim() == 3:
            emb_gate = emb_gate[selected]
        elif emb_gate is not None and emb_gate.shape[0] > 1:
            emb_gate = emb_gate[selected.nonzero()[:, 0]]
        logits = self.head(h, self.embed, emb_gate)
        # half-precision logits (DeepSpeed fp16) are scored in fp32
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        return F.cross_entropy(logits, labels[selected])


def _init_weights(module: nn.Module, std: float) -> None:
    # As XLM-R: N(0, std) weights, zero biases, the padding embedding zero.
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=std)
        if module.padding_idx is not None:
            nn.init.zeros_(module.weight[module.padding_idx])
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# ---- transformers compatibility -------------------------------------------------------------

_HF_LAYER = {
    "attn.query": "attention.self.query",
    "attn.key": "attention.self.key",
    "attn.value": "attention.self.value",
    "attn.out": "attention.output.dense",
    "attn_norm": "attention.output.LayerNorm",
    "ffn_up": "intermediate.dense",
    "ffn_down": "output.dense",
    "ffn_norm": "output.LayerNorm",
}
_HF_EMBED = {
    "embed.tokens": "embeddings.word_embeddings",
    "embed.positions": "embeddings.position_embeddings",
    "embed.token_types": "embeddings.token_type_embeddings",
    "embed.norm": "embeddings.LayerNorm",
}
# per layout: the encoder's prefix, and the MLM head's modules ("decoder" is tied to the words)
_HF_ENCODER = {"xlmr": "roberta", "bert": "bert"}
_HF_HEAD = {
    "xlmr": {
        "head.dense": "lm_head.dense",
        "head.norm": "lm_head.layer_norm",
        "head.bias": "lm_head.bias",
        "decoder": "lm_head.decoder",
    },
    "bert": {
        "head.dense": "cls.predictions.transform.dense",
        "head.norm": "cls.predictions.transform.LayerNorm",
        "head.bias": "cls.predictions.bias",
        "decoder": "cls.predictions.decoder",
    },
}


def hf_key(key: str, layout: str = "xlmr") -> str:
    """Our state-dict key -> XLMRobertaForMaskedLM's (layout xlmr) or BertForMaskedLM's (bert)."""
    head, encoder = _HF_HEAD[layout], _HF_ENCODER[layout]
    if key == "head.bias":
        return head["head.bias"]
    module, param = key.rsplit(".", 1)
    layer = re.fullmatch(r"layers\.(\d+)\.(.+)", module)
    if layer:
        return f"{encoder}.encoder.layer.{layer[1]}.{_HF_LAYER[layer[2]]}.{param}"
    if module in _HF_EMBED:
        return f"{encoder}.{_HF_EMBED[module]}.{param}"
    if module in head:
        return f"{head[module]}.{param}"
    raise KeyError(f"{key!r} has no transformers counterpart")


def to_hf_state_dict(model: MaskedLM) -> dict[str, torch.Tensor]:
    if model.cfg.emb_rank is not None or model.gate_table is not None:
        raise ValueError("only an unfactorised, ungated model maps onto transformers' models")
    layout = model.cfg.layout
    sd = {hf_key(k, layout): v for k, v in model.state_dict().items()}
    decoder = _HF_HEAD[layout]["decoder"]
    sd[f"{decoder}.weight"] = sd[hf_key("embed.tokens.weight", layout)]
    sd[f"{decoder}.bias"] = sd[hf_key("head.bias", layout)]
    return sd


def from_hf_state_dict(sd: dict[str, torch.Tensor], cfg: ModelConfig) -> MaskedLM:
    model = MaskedLM(cfg)
    ours = {
        k: sd[hf_key(k, cfg.layout)] for k in model.state_dict() if not k.startswith("gate_table.")
    }
    missing = model.load_state_dict(ours, strict=False).missing_keys
    if any(not k.startswith("gate_table.") for k in missing):
        raise KeyError(f"checkpoint lacks {missing}")
    return model


def load_hf(name_or_path: str, revision: str | None = None) -> MaskedLM:
    """A public XLM-R or BERT checkpoint (hub id or local directory) as a polyprune model."""
    from transformers import AutoModelForMaskedLM

    hf = AutoModelForMaskedLM.from_pretrained(name_or_path, revision=revision)
    return from_hf_state_dict(hf.state_dict(), ModelConfig.from_hf(hf.config))


def convert_hf(name_or_path: str, revision: str | None, out_dir, extra: dict) -> None:
    """A public checkpoint saved as a polyprune checkpoint, its origin recorded with `extra`."""
    origin = {"hub_or_path": name_or_path, "revision": revision}
    save_model(load_hf(name_or_path, revision), out_dir, extra={"origin": origin, **extra})


# ---- checkpoints ----------------------------------------------------------------------------


def save_model(
    model: MaskedLM,
    directory: str | Path,
    extra: dict | None = None,
    files: dict[str, bytes] | None = None,
) -> None:
    """config.json + model.safetensors (+ `files`, e.g. a Dynamic Sparsification model's gate
    parameters), written into a temporary sibling and renamed; config.json records the sha256 of
    the weights (`weights_sha256`), which `load_model` checks, and of each file (`files_sha256`)."""
    from safetensors.torch import save

    from polyprune.io import atomic_dir

    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    weights = save(tensors, metadata={"format": FORMAT})
    meta = {"format": FORMAT, "config": asdict(model.cfg), **(extra or {})}
    meta["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    if files:
        meta["files_sha256"] = {name: hashlib.sha256(b).hexdigest() for name, b in files.items()}
    with atomic_dir(directory) as tmp:
        (tmp / WEIGHTS_FILE).write_bytes(weights)
        for name, content in (files or {}).items():
            (tmp / name).write_bytes(content)
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=1))


def read_checkpoint_file(directory: str | Path, name: str) -> bytes:
    """A file that `save_model` wrote beside the weights, checked against its recorded sha256."""
    meta = read_checkpoint_meta(directory)
    recorded = meta.get("files_sha256", {})
    if name not in recorded:
        raise CheckpointError(f"{Path(directory) / CONFIG_FILE}: records no file {name!r}")
    return _read_checked(Path(directory) / name, recorded[name], f"files_sha256[{name!r}]")


def load_model(directory: str | Path) -> MaskedLM:
    """Any polyprune checkpoint (dense, gated, or physically pruned) in one call."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    directory = Path(directory)
    meta = read_checkpoint_meta(directory)
    model = MaskedLM(ModelConfig(**meta["config"]))
    path = directory / WEIGHTS_FILE
    weights = _read_checked(path, meta.get("weights_sha256"))
    try:
        tensors = load(weights)
    except SafetensorError as e:
        raise CheckpointError(f"{path}: unreadable or truncated ({e})") from e
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        mismatch = " ".join(str(e).split())  # torch lists the mismatches on several lines
        raise CheckpointError(f"{path}: does not match its config ({mismatch})") from e
    return model


def _read_checked(path: Path, sha256: str | None, recorded_as: str = "weights_sha256") -> bytes:
    """A checkpoint file's bytes, checked against the digest config.json records for it
    (checkpoints written before digests were recorded have none)."""
    try:
        weights = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: unreadable ({e})") from e
    if sha256 is not None and hashlib.sha256(weights).hexdigest() != sha256:
        raise CheckpointError(
            f"{path}: sha256 differs from {recorded_as} in {CONFIG_FILE} (corrupted or replaced)"
        )
    return weights


def read_checkpoint_meta(directory: str | Path) -> dict:
    path = Path(directory) / CONFIG_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not a polyprune checkpoint ({e})") from e
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta
