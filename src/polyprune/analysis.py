"""The paper's analysis of subnetworks: how far apart the languages' gate sets are (Figure 7,
Appendix E) and the language table with its families (Table 4)."""

from __future__ import annotations

import torch

from polyprune.model import MaskedLM


def gate_vectors(model: MaskedLM) -> dict[str, torch.Tensor]:
    """Each gate set of a model as one 0/1 vector over its heads and FFN units (kept or not)."""
    table = model.gate_table
    if table is None:
        raise ValueError("the model has no gate sets (a dense or physically pruned model)")
    out = {}
    for i, name in enumerate(table.names):
        gates = table.select(i)
        out[name] = torch.cat([t.flatten() for t in [*gates.heads, *gates.ffn]]).ne(0)
    return out


def hamming_distances(vectors: dict[str, torch.Tensor]) -> list[tuple[str, str, float]]:
    """The normalised Hamming distance between every two gate sets (both orders, and each set
    with itself): the share of components that one keeps and the other does not."""
    return [
        (a, b, float((va != vb).float().mean()))
        for a, va in vectors.items()
        for b, vb in vectors.items()
    ]
