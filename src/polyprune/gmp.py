"""Gradual magnitude pruning during fine-tuning: the second study's sparsification.

Zhu & Gupta (2017): the target sparsity rises from s_i to s_f along
s_t = s_f + (s_i - s_f) (1 - (t - t_0) / (t_1 - t_0))^3, and the masks are recomputed every Δt
steps from t_0 to t_1. `MagnitudePruner` is a hook that any training loop calls after each
optimizer step: it recomputes the masks on the schedule's steps and re-applies them at every step,
so that a pruned weight stays zero whatever the optimizer's moments say.

Unstructured: the encoder's attention and FFN weight matrices (embeddings, biases and LayerNorms
are kept), the smallest magnitudes ranked over every matrix at once (`global`) or within each
matrix (`layer`). Structured: whole heads and FFN units, ranked by the mean squared value of their
weights (per weight, so that a head and a unit compare fairly), removed through the model's single
shared gate set, so that the result can be pruned physically. Once pruned, a weight or component
stays pruned.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from polyprune import gates as gating
from polyprune.model import MaskedLM

KINDS = ("unstructured", "structured")
SCOPES = ("global", "layer")
MATRICES = ("attn.query", "attn.key", "attn.value", "attn.out", "ffn_up", "ffn_down")


@dataclass(frozen=True)
class CubicSchedule:
    """Zhu & Gupta's schedule: `initial` at step `start`, `final` from step `end` on, masks
    recomputed every `every` steps in between (and at `end`)."""

    final: float
    start: int
    end: int
    every: int = 1
    initial: float = 0.0

    def __post_init__(self):
        if not 0 <= self.initial <= self.final < 1:
            raise ValueError(f"sparsities need 0 <= initial <= final < 1, got {self}")
        if self.start < 0 or self.every < 1:
            raise ValueError(f"start needs to be >= 0 and every >= 1, got {self}")
        if self.end < self.start:
            raise ValueError(f"the schedule ends (step {self.end}) before it starts ({self.start})")

    def updates_at(self, step: int) -> bool:
        inside = self.start <= step <= self.end
        return inside and ((step - self.start) % self.every == 0 or step == self.end)

    def sparsity(self, step: int) -> float:
        """The target in force after `step`: the value of the last update at or before it."""
        if step < self.start:
            return 0.0
        last = self.end if step >= self.end else step - (step - self.start) % self.every
        span = self.end - self.start
        progress = 1.0 if span == 0 else (last - self.start) / span
        return self.final + (self.initial - self.final) * (1 - progress) ** 3


def encoder_matrices(model: MaskedLM) -> list[torch.Tensor]:
    """The weight matrices that unstructured pruning ranks, layer by layer."""
    modules = dict(model.named_modules())
    return [
        modules[f"layers.{i}.{name}"].weight for i in range(model.cfg.layers) for name in MATRICES
    ]


class MagnitudePruner:
    def __init__(self, model: MaskedLM, schedule: CubicSchedule, kind: str, scope: str):
        if kind not in KINDS or scope not in SCOPES:
            raise ValueError(f"kind {kind!r} / scope {scope!r}: expected one of {KINDS} / {SCOPES}")
        table = model.gate_table
        if kind == "structured" and (table is None or gating.per_language(table.names)):
            raise ValueError("structured pruning needs a model with one shared gate set")
        self.model, self.schedule, self.kind, self.scope = model, schedule, kind, scope
        self.masks = [torch.ones_like(w, dtype=torch.bool) for w in encoder_matrices(model)]

    def step(self, step: int) -> None:
        """Call after optimizer step `step` (1, 2, ...)."""
        if self.schedule.updates_at(step):
            target = self.schedule.sparsity(step)
            if self.kind == "unstructured":
                self._mask_weights(target)
            else:
                self._gate_components(target)
        self._apply()

    @torch.no_grad()
    def _apply(self) -> None:
        if self.kind == "unstructured":
            for w, mask in zip(encoder_matrices(self.model), self.masks, strict=True):
                w.mul_(mask)

    @torch.no_grad()
    def _mask_weights(self, target: float) -> None:
        # pruned weights rank first (-1), so that they stay pruned
        scores = [
            torch.where(m, w.abs().float(), -1.0)
            for w, m in zip(encoder_matrices(self.model), self.masks, strict=True)
        ]
        if self.scope == "layer":
            self.masks = [_keep_largest(s.flatten(), target).view_as(s) for s in scores]
            return
        kept = _keep_largest(torch.cat([s.flatten() for s in scores]), target)
        self.masks = [m.view_as(s) for m, s in zip(kept.split([s.numel() for s in scores]), scores)]

    @torch.no_grad()
    def _gate_components(self, target: float) -> None:
        table, scores = self.model.gate_table, component_scores(self.model)
        current = table.select(0)
        for kind in ("heads", "ffn"):
            for layer, s in enumerate(scores[kind]):
                s[getattr(current, kind)[layer][0] == 0] = -1.0
        d, dh = self.model.cfg.hidden, self.model.cfg.head_dim
        weights = {"heads": 4 * d * dh, "ffn": 2 * d}  # each component's weights in the matrices
        if self.scope == "layer":
            gates = gating.Gates(
                heads=[_keep_largest(s, target)[None].float() for s in scores["heads"]],
                ffn=[_keep_largest(s, target)[None].float() for s in scores["ffn"]],
            )
        else:
            gates = _global_components(scores, weights, target)
        table.set_row(0, gates)

    def sparsity(self) -> float:
        """The share of the encoder's matrix weights that are pruned, as measured now: zero
        weights (unstructured) or weights under a zero gate (structured)."""
        if self.kind == "unstructured":
            matrices = encoder_matrices(self.model)
            zero = sum(int((w == 0).sum()) for w in matrices)
            return zero / sum(w.numel() for w in matrices)
        d, dh = self.model.cfg.hidden, self.model.cfg.head_dim
        unit = {"heads": 4 * d * dh, "ffn": 2 * d}
        return gating.sparsity(self.model.gate_table.select(0), unit)


def component_scores(model: MaskedLM) -> dict[str, list[torch.Tensor]]:
    """Per layer, each head's and each FFN unit's mean squared weight: a head's rows of the
    query, key and value matrices and its columns of the output matrix; a unit's row of the up
    and column of the down projection."""
    heads, ffn = [], []
    for layer in model.layers:
        attn, dh = layer.attn, model.cfg.head_dim
        rows = sum(
            getattr(attn, name).weight.pow(2).view(attn.n_heads, dh, -1).sum((1, 2))
            for name in ("query", "key", "value")
        )
        cols = attn.out.weight.pow(2).view(-1, attn.n_heads, dh).sum((0, 2))
        heads.append(((rows + cols) / (4 * dh * model.cfg.hidden)).detach().float())
        unit = layer.ffn_up.weight.pow(2).sum(1) + layer.ffn_down.weight.pow(2).sum(0)
        ffn.append((unit / (2 * model.cfg.hidden)).detach().float())
    return {"heads": heads, "ffn": ffn}


def _keep_largest(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """True for all but the round(sparsity * n) lowest scores (ties: the earlier index goes)."""
    pruned = round(sparsity * scores.numel())
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep[torch.argsort(scores, stable=True)[:pruned]] = False
    return keep


def _global_components(scores: dict, weights: dict, target: float) -> gating.Gates:
    """Lowest-scoring heads and units across layers until `target` of the weights are gone."""
    ranked = sorted(
        (float(s), kind, layer, index)
        for kind in ("heads", "ffn")
        for layer, layer_scores in enumerate(scores[kind])
        for index, s in enumerate(layer_scores.tolist())
    )
    total = sum(weights[kind] * sum(s.numel() for s in scores[kind]) for kind in weights)
    gates = {kind: [torch.ones(1, s.numel()) for s in scores[kind]] for kind in weights}
    removed = 0
    for _, kind, layer, index in ranked:
        if removed + weights[kind] / 2 > target * total:
            break
        gates[kind][layer][0, index] = 0.0
        removed += weights[kind]
    return gating.Gates(heads=gates["heads"], ffn=gates["ffn"])
