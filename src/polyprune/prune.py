"""From importance scores to the gates of a cell, and from a gated model to a smaller one."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import torch

from polyprune.gates import Gates, per_language
from polyprune.gates import sparsity as sparsity_of
from polyprune.model import MaskedLM

SCOPES = {"encoder": ("heads", "ffn"), "all": ("heads", "ffn", "emb")}
RANKINGS = ("score", "score_per_weight")


def select_components(
    scores: Gates,
    unit: dict[str, float],
    sparsity: float,
    scope: str = "encoder",
    rank_by: str = "score",
) -> Gates:
    """Binary gates keeping the highest-scoring components of `scope` until the kept weight
    (Appendix B units) reaches (1 - sparsity) of the total, ranked globally across layers and
    kinds. Components outside `scope` stay on. The budget is rounded to the weights' common
    granularity, so with FFN units (weight 2) in scope the target is met exactly."""
    if not 0 < sparsity < 1:
        raise ValueError(f"sparsity must lie in (0, 1), got {sparsity}")
    kinds = SCOPES[scope]
    items = ranked_components(scores, unit, kinds, rank_by)
    total = sum(w for w, *_ in items)
    step = math.gcd(*(int(unit[k]) for k in kinds))
    budget = round((1 - sparsity) * total / step) * step
    gates = Gates.ones_like(scores)
    for kind in kinds:
        for _, t in _by_layer(gates, kind):
            t.zero_()
    kept = 0
    for weight, kind, layer, index in items:
        if kept + weight <= budget:
            _tensor(gates, kind, layer)[index] = 1.0
            kept += weight
    return gates


def ranked_components(
    scores: Gates, unit: dict[str, float], kinds, rank_by: str = "score"
) -> list[tuple[float, str, int, int]]:
    """(weight, kind, layer, index) of every component of `kinds`, most important first, ranked
    globally by score (or score per Appendix B weight); ties in (kind, layer, index) order."""
    if rank_by not in RANKINGS:
        raise ValueError(f"rank_by must be one of {RANKINGS}, got {rank_by!r}")
    items = []
    for kind in kinds:
        for layer, tensor in _by_layer(scores, kind):
            for index, score in enumerate(tensor.tolist()):
                key = score / unit[kind] if rank_by == "score_per_weight" else score
                items.append((-key, kind, layer, index, unit[kind]))
    return [(w, kind, layer, index) for _, kind, layer, index, w in sorted(items)]


def _by_layer(g: Gates, kind: str):
    if kind == "emb":
        return [] if g.emb is None else [(0, g.emb)]
    return list(enumerate(getattr(g, kind)))


def _tensor(g: Gates, kind: str, layer: int) -> torch.Tensor:
    return g.emb if kind == "emb" else getattr(g, kind)[layer]


def gated_model(base: MaskedLM, gate_sets: dict[str, Gates]) -> MaskedLM:
    """`base`'s weights with a gate table holding one row per named gate set."""
    names = list(gate_sets)
    model = MaskedLM(replace(base.cfg, gate_sets=names))
    model.load_state_dict(base.state_dict(), strict=False)
    for row, name in enumerate(names):
        model.gate_table.set_row(row, gate_sets[name])
    return model


def physically_prune(model: MaskedLM) -> MaskedLM:
    """A smaller model with the same outputs as the (single gate set) gated `model`: gate values
    are folded into the output projections (Wo columns, W2 columns, P rows) and components with
    gate 0 are removed."""
    if model.gate_table is None or per_language(model.gate_table.names):
        raise ValueError("only a model with exactly one (shared) gate set can be pruned physically")
    g = model.gates_for(0)
    cfg, dh = model.cfg, model.cfg.head_dim
    heads = [g.heads[i][0].nonzero().flatten() for i in range(cfg.layers)]
    units = [g.ffn[i][0].nonzero().flatten() for i in range(cfg.layers)]
    ranks = None if g.emb is None else g.emb[0].nonzero().flatten()
    small = MaskedLM(
        replace(
            cfg,
            heads=[len(h) for h in heads],
            ffn=[len(u) for u in units],
            emb_rank=None if ranks is None else len(ranks),
            gate_sets=[],
        )
    )
    state = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("gate_table")}
    for i in range(cfg.layers):
        rows = (heads[i][:, None] * dh + torch.arange(dh)).flatten()
        head_scale = g.heads[i][0][heads[i]].repeat_interleave(dh)
        p = f"layers.{i}."
        for name in ("query", "key", "value"):
            state[p + f"attn.{name}.weight"] = state[p + f"attn.{name}.weight"][rows]
            state[p + f"attn.{name}.bias"] = state[p + f"attn.{name}.bias"][rows]
        state[p + "attn.out.weight"] = state[p + "attn.out.weight"][:, rows] * head_scale
        state[p + "ffn_up.weight"] = state[p + "ffn_up.weight"][units[i]]
        state[p + "ffn_up.bias"] = state[p + "ffn_up.bias"][units[i]]
        ffn_scale = g.ffn[i][0][units[i]]
        state[p + "ffn_down.weight"] = state[p + "ffn_down.weight"][:, units[i]] * ffn_scale
    if ranks is not None:
        state["embed.tokens.weight"] = state["embed.tokens.weight"][:, ranks]
        state["embed.proj.weight"] = state["embed.proj.weight"][:, ranks] * g.emb[0][ranks]
    small.load_state_dict(state)
    return small


def achieved_sparsity(gates: Gates, unit: dict[str, float], scope: str = "encoder") -> float:
    return sparsity_of(gates, unit, SCOPES[scope])


def round_widths(gates: Gates, scores: Gates, heads_multiple: int, ffn_multiple: int) -> Gates:
    """Hardware-friendly widths: per layer, the number of kept heads and of kept FFN units
    rounded to the nearest multiple (halves up), keeping that layer's highest-scoring
    components. The sparsity moves by at most half a multiple per layer and kind."""

    def rounded(gate: torch.Tensor, score: torch.Tensor, multiple: int) -> torch.Tensor:
        kept = int(gate.count_nonzero())
        target = min(gate.numel(), multiple * math.floor(kept / multiple + 0.5))
        out = torch.zeros_like(gate)
        out[torch.argsort(score, descending=True, stable=True)[:target]] = 1.0
        return out

    return Gates(
        heads=[rounded(g, s, heads_multiple) for g, s in zip(gates.heads, scores.heads)],
        ffn=[rounded(g, s, ffn_multiple) for g, s in zip(gates.ffn, scores.ffn)],
        emb=gates.emb,
    )


def keep_layers(model: MaskedLM, keep: list[int]) -> MaskedLM:
    """A model of `model`'s layers `keep` (increasing indices), with its embeddings, MLM head,
    per-layer head counts and FFN widths, and its gate table's rows for those layers."""
    cfg = model.cfg
    small = MaskedLM(
        replace(
            cfg,
            layers=len(keep),
            heads=[cfg.heads[i] for i in keep],
            ffn=[cfg.ffn[i] for i in keep],
        )
    )

    def source(key: str) -> str:  # layers.1.attn.out.weight -> layers.<keep[1]>.attn.out.weight
        m = re.fullmatch(r"(layers\.|gate_table\.(?:heads|ffn)_)(\d+)(.*)", key)
        return f"{m[1]}{keep[int(m[2])]}{m[3]}" if m else key

    weights = model.state_dict()
    small.load_state_dict({k: weights[source(k)] for k in small.state_dict()})
    return small


def drop_empty_layers(model: MaskedLM) -> MaskedLM:
    """A physically pruned model without its layers that kept no head and no FFN unit. Such a
    layer still adds its output biases and applies its two LayerNorms, so the result computes
    a (slightly) different function: an option for speed, not an equivalent model."""
    if model.gate_table is not None:
        raise ValueError("drop_empty_layers takes a physically pruned model (no gate table)")
    cfg = model.cfg
    return keep_layers(model, [i for i in range(cfg.layers) if cfg.heads[i] or cfg.ffn[i]])


def subnetwork(model: MaskedLM, gate_set: str) -> MaskedLM:
    """One gate set of a gated model (e.g. one language's of a non-shared cell) as a physically
    smaller model with the same outputs for that set."""
    gates = model.gates_for(gate_set)
    ungated = MaskedLM(replace(model.cfg, gate_sets=[]))
    weights = model.state_dict()
    ungated.load_state_dict({k: v for k, v in weights.items() if not k.startswith("gate_table")})
    return physically_prune(gated_model(ungated, {"shared": gates}))
