"""Gradient importance (Eq 4, Michel et al. 2019) of heads, FFN units and embedding ranks.

I_i = E_x | component_i(x)^T dL/dcomponent_i(x) |, which equals |dL/dG_i| at G = 1. The gates are
leaf tensors of ones; one backward pass gives every component's score. Where the absolute value is
taken is an option (`granularity`): over the whole batch (Michel et al.'s code) or per token
(gates of shape (B, T, n)). `normalize="layer"` divides each layer's scores by their L2 norm
(Michel et al.) before the global ranking.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace

import torch

from polyprune.errors import DataError
from polyprune.gates import Gates
from polyprune.model import MaskedLM

GRANULARITIES = ("batch", "token")
# which component kinds have their scores divided by their layer's L2 norm before the global
# ranking: heads (Michel et al.), every kind, or none
NORMALIZATIONS = ("heads", "layer", "none")


def factorize_embeddings(model: MaskedLM) -> MaskedLM:
    """A copy of `model` whose word embedding is E = Ê P (Eq 3) by SVD at full rank d:
    Ê = U S (v x d), P = V^T (d x d), ranks ordered by singular value. Outputs are unchanged up
    to float error."""
    if model.cfg.emb_rank:
        return model
    E = model.embed.tokens.weight.detach().double()
    U, S, Vh = torch.linalg.svd(E, full_matrices=False)
    cfg = replace(model.cfg, emb_rank=S.numel())
    out = MaskedLM(cfg)
    state = {k: v for k, v in model.state_dict().items() if k != "embed.tokens.weight"}
    state["embed.tokens.weight"] = (U * S).float()
    state["embed.proj.weight"] = Vh.T.float()
    out.load_state_dict(state)
    return out.train(model.training)


def _ones(shape: tuple[int, ...], n: int, device) -> torch.Tensor:
    return torch.ones(*shape, n, device=device, requires_grad=True)


def gradient_importance(
    model: MaskedLM,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    granularity: str = "batch",
) -> tuple[Gates, int]:
    """Mean over batches of |dL/dG| (per batch or summed per token). Returns (scores, batches)."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    if model.gate_table is not None:
        raise ValueError("importance is scored on an ungated (base) model")
    cfg, device = model.cfg, model.embed.tokens.weight.device
    model.eval().requires_grad_(False)
    totals, n = None, 0
    for inputs, labels in batches:
        inputs, labels = inputs.to(device), labels.to(device)
        shape = (1,) if granularity == "batch" else tuple(inputs.shape)
        gates = Gates(
            heads=[_ones(shape, h, device) for h in cfg.heads],
            ffn=[_ones(shape, f, device) for f in cfg.ffn],
            emb=_ones(shape, cfg.emb_rank, device) if cfg.emb_rank else None,
        )
        model(inputs, labels=labels, gates=gates).backward()
        scores = [leaf.grad.abs().reshape(-1, leaf.shape[-1]).sum(0) for leaf in gates.leaves()]
        totals = scores if totals is None else [t + s for t, s in zip(totals, scores)]
        n += 1
    if n == 0:
        raise ValueError("no data to score importance on")
    model.requires_grad_(True)
    return _regroup([t / n for t in totals], cfg), n


def _regroup(flat: list[torch.Tensor], cfg) -> Gates:
    L = cfg.layers
    return Gates(
        heads=[t.detach().cpu() for t in flat[:L]],
        ffn=[t.detach().cpu() for t in flat[L : 2 * L]],
        emb=flat[2 * L].detach().cpu() if len(flat) > 2 * L else None,
    )


def normalize(scores: Gates, how: str) -> Gates:
    """Layer-wise L2 normalisation before the global ranking (Michel et al.):
    - `heads`: each layer's head scores divided by their L2 norm and multiplied by the mean of
      those norms over layers, so that layers compare as Michel et al. compare them while heads
      keep the scale they were measured at: the ranking against FFN units and embedding ranks
      (left as measured) follows the scores;
    - `layer`: every kind's scores per layer to unit norm (public implementations): a layer's
      heads and its units then weigh the same in total, whatever was measured;
    - `none`."""
    if how not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {how!r}")

    def unit(t):
        norm = t.norm()
        return t / norm if norm > 0 else t

    def same_scale(tensors):
        mean_norm = sum(t.norm() for t in tensors) / len(tensors)
        return [unit(t) * mean_norm for t in tensors]

    if how == "heads":
        return Gates(heads=same_scale(scores.heads), ffn=scores.ffn, emb=scores.emb)
    if how == "layer":
        emb = None if scores.emb is None else unit(scores.emb)
        return Gates(
            heads=[unit(t) for t in scores.heads], ffn=[unit(t) for t in scores.ffn], emb=emb
        )
    return scores


def save_scores(path, scores: Gates, meta: dict) -> None:
    from safetensors.torch import save_file

    from polyprune.io import atomic_file

    tensors = {f"heads.{i}": t.contiguous() for i, t in enumerate(scores.heads)}
    tensors |= {f"ffn.{i}": t.contiguous() for i, t in enumerate(scores.ffn)}
    if scores.emb is not None:
        tensors["emb"] = scores.emb.contiguous()
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata={"meta": json.dumps(meta)})


def load_scores(path) -> tuple[Gates, dict]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = json.loads(f.metadata()["meta"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
    except (SafetensorError, OSError, KeyError) as e:
        raise DataError(f"{path}: unreadable importance scores ({e})") from e
    layers = sum(k.startswith("heads.") for k in tensors)
    return Gates(
        heads=[tensors[f"heads.{i}"] for i in range(layers)],
        ffn=[tensors[f"ffn.{i}"] for i in range(layers)],
        emb=tensors.get("emb"),
    ), meta
