"""Gates over prunable components (Eqs 1-3) and the sizes they govern.

A prunable model has three kinds of components: attention heads (one gate per head per layer),
FFN hidden units (one per unit per layer) and embedding ranks (one per rank of the factorised
embedding). `Gates` holds one value per component, batched so that every example may use its own
language's gates; `GateTable` stores fixed gate sets (one shared set, or one per language) inside a
model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Gates:
    """Gate values: per layer `(B or 1, n_heads_l)` and `(B or 1, ffn_l)`, and `(B or 1, rank)`."""

    heads: list[torch.Tensor]
    ffn: list[torch.Tensor]
    emb: torch.Tensor | None = None

    @classmethod
    def ones(cls, heads: list[int], ffn: list[int], emb_rank: int | None, requires_grad=False):
        def one(n):
            return torch.ones(1, n, requires_grad=requires_grad)

        return cls(
            heads=[one(h) for h in heads],
            ffn=[one(f) for f in ffn],
            emb=one(emb_rank) if emb_rank else None,
        )

    @classmethod
    def ones_like(cls, other: Gates) -> Gates:
        """Every component of `other`'s shapes kept."""
        return cls(
            heads=[torch.ones_like(g) for g in other.heads],
            ffn=[torch.ones_like(g) for g in other.ffn],
            emb=None if other.emb is None else torch.ones_like(other.emb),
        )

    def leaves(self) -> list[torch.Tensor]:
        return [*self.heads, *self.ffn, *([self.emb] if self.emb is not None else [])]


def per_language(names: list[str]) -> bool:
    """Whether gate sets `names` are one per language (non-shared); a single set is shared by
    every language."""
    return len(names) > 1


def gate_row(names: list[str], lang: str) -> int:
    """The gate set that text in `lang` runs with."""
    return names.index(lang) if per_language(names) else 0


class GateTable(nn.Module):
    """Fixed gate sets stored as buffers: row `i` of every table is gate set `names[i]`."""

    def __init__(self, names: list[str], heads: list[int], ffn: list[int], emb_rank: int | None):
        super().__init__()
        self.names = list(names)
        n = len(self.names)
        for i, h in enumerate(heads):
            self.register_buffer(f"heads_{i}", torch.ones(n, h))
        for i, f in enumerate(ffn):
            self.register_buffer(f"ffn_{i}", torch.ones(n, f))
        self.register_buffer("emb", torch.ones(n, emb_rank or 0))
        self.n_layers = len(heads)

    def index(self, name: str) -> int:
        if name not in self.names:
            raise KeyError(f"no gate set {name!r}; this model has {self.names}")
        return self.names.index(name)

    def select(self, which: torch.Tensor | int) -> Gates:
        """Gates for gate-set indices `which`: an int (one set for the batch) or a (B,) tensor."""
        rows = torch.as_tensor(which).reshape(-1)
        return Gates(
            heads=[getattr(self, f"heads_{i}")[rows] for i in range(self.n_layers)],
            ffn=[getattr(self, f"ffn_{i}")[rows] for i in range(self.n_layers)],
            emb=self.emb[rows] if self.emb.shape[1] else None,
        )

    def set_row(self, row: int, gates: Gates) -> None:
        for i in range(self.n_layers):
            getattr(self, f"heads_{i}")[row] = gates.heads[i].reshape(-1)
            getattr(self, f"ffn_{i}")[row] = gates.ffn[i].reshape(-1)
        if gates.emb is not None and self.emb.shape[1]:
            self.emb[row] = gates.emb.reshape(-1)


def kept_weight(gates: Gates, unit: dict[str, float], kinds=("heads", "ffn")) -> float:
    """Weighted size of the components a (single-row) gate set keeps, for the given kinds."""
    total = 0.0
    if "heads" in kinds:
        total += sum(unit["heads"] * float((g != 0).sum()) for g in gates.heads)
    if "ffn" in kinds:
        total += sum(unit["ffn"] * float((g != 0).sum()) for g in gates.ffn)
    if "emb" in kinds and gates.emb is not None:
        total += unit["emb"] * float((gates.emb != 0).sum())
    return total


def sparsity(gates: Gates, unit: dict[str, float], kinds=("heads", "ffn")) -> float:
    """1 - kept / all, with the Appendix B weights. With kinds=("heads", "ffn") this is the
    encoder sparsity of Tables 1-3 (embeddings excluded): the share of the encoder's attention and
    FFN weight matrices that the gates remove."""
    return 1.0 - kept_weight(gates, unit, kinds) / kept_weight(Gates.ones_like(gates), unit, kinds)
