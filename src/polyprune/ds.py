"""Dynamic Sparsification (the paper's section 6.1 and Appendix D): train once, cut to any size.

Every prunable component c (attention head, FFN unit, embedding rank) has the gate
g_c = f(alpha_c t + beta_c) (Eq 14): t is the target network size (1 - sparsity), f the
hard-concrete gate of Eqs 6-8. Eq 16 sets alpha and beta from the component's boundary size t̂_c
and its own size delta_c so that f(alpha t̂ + beta) = 1 and f(alpha (t̂ - delta) + beta) = 0:
the component is on from t̂ up and off below t̂ - delta. Appendix D: delta_c = w_c / sum(w) with the
Appendix B weights of every component (embeddings included), and t̂_c is snapped up to the grid of
inference sizes, so that at each grid size exactly the components ranked above it are on and alpha,
beta need no more precision than the grid's.

The ranking comes from gradient importance (Eq 4). Gradient-based DS keeps alpha, beta frozen and
its gates noiseless; L0-based DS trains them with the weights (noisy gates, the sparsity constraint
pulling the expected size to each sampled t, and the diversity loss). beta is stored as its offset
from Eq 16's value, beta = f^-1(1) - alpha t̂ + offset: alpha then pivots about the boundary, not
about t = 0, and the gates at the grid sizes are exactly 0 or 1 in fp32 at any model size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from polyprune.config import check_grid
from polyprune.errors import CheckpointError, ConfigError
from polyprune.gates import Gates, kept_weight
from polyprune.l0 import HardConcrete
from polyprune.model import MaskedLM, read_checkpoint_file, read_checkpoint_meta, save_model
from polyprune.prune import _by_layer, _tensor, gated_model, physically_prune, ranked_components

KINDS = ("heads", "ffn", "emb")  # DS prunes every kind (Appendix D)
GATES_FILE = "dynamic.safetensors"
TOLERANCE = 1e-9  # float slack when a cumulative size meets a grid size


def training_sizes(grid: Sequence[float]) -> list[float]:
    """The network sizes t that training samples: every grid size but 0 (nothing kept)."""
    return [1 - s for s in grid if s < 1]


def boundaries(
    scores: Gates, unit: dict[str, float], grid: Sequence[float], rank_by: str = "score"
) -> tuple[Gates, Gates]:
    """(t̂, delta) of every component of every kind (Appendix D) from one gate set's importance
    scores: components are taken most important first, each adds delta = w / sum(w) to the
    size kept so far, and its boundary is that cumulative size snapped up to the next grid size."""
    sizes = sorted(1 - s for s in check_grid(grid))
    items = ranked_components(scores, unit, KINDS, rank_by)
    total = sum(w for w, *_ in items)
    t_hat, delta = _zeros_like(scores), _zeros_like(scores)
    kept = 0.0
    for weight, kind, layer, index in items:
        kept += weight
        share = kept / total
        _tensor(t_hat, kind, layer)[index] = next(t for t in sizes if t >= share - TOLERANCE)
        _tensor(delta, kind, layer)[index] = weight / total
    return t_hat, delta


def _zeros_like(g: Gates) -> Gates:
    return Gates(
        heads=[torch.zeros_like(t, dtype=torch.float32) for t in g.heads],
        ffn=[torch.zeros_like(t, dtype=torch.float32) for t in g.ffn],
        emb=None if g.emb is None else torch.zeros_like(g.emb, dtype=torch.float32),
    )


class DynamicGates(HardConcrete):
    """alpha and beta per component and gate set (one set, or one per language), the target
    size `size` the gates are computed at, and the grid of inference sparsities. Per kind,
    `boundary` and `delta` are (n_sets, sum of the layers' widths) tensors; `widths` splits
    them into layers."""

    def __init__(
        self,
        names: list[str],
        boundary: dict[str, torch.Tensor],
        delta: dict[str, torch.Tensor],
        widths: dict[str, list[int]],
        unit: dict[str, float],
        grid: Sequence[float],
        trainable: bool,
        left: float = -0.1,
        right: float = 1.1,
        beta: float = 2 / 3,
    ):
        super().__init__(names, unit, left, right, beta)
        self.grid, self.trainable, self.widths = check_grid(grid), trainable, widths
        self.size = 1.0
        # f^-1(1), f^-1(0): where the noiseless clamped gate reaches 1 and 0 (ln 11, -ln 11)
        self.on = _logit((1 - left) / (right - left))
        self.off = _logit(-left / (right - left))
        for kind in KINDS:
            alpha = (self.on - self.off) / delta[kind]  # Eq 16
            self.register_buffer(f"{kind}_boundary", boundary[kind].float())
            self.register_parameter(f"{kind}_alpha", nn.Parameter(alpha.float(), trainable))
            self.register_parameter(
                f"{kind}_offset", nn.Parameter(torch.zeros_like(alpha), trainable)
            )

    def _flat(self, kind: str, name: str) -> torch.Tensor:
        return getattr(self, f"{kind}_{name}")

    def _split(self, kind: str, flat: torch.Tensor) -> list[torch.Tensor]:
        return list(flat.split(self.widths[kind], dim=1)) if self.widths[kind] else []

    def log_alphas(self, kind: str) -> list[torch.Tensor]:
        """Eq 14's pre-activation alpha t + beta at t = `size`, per layer (n_sets, n)."""
        z = (
            self._flat(kind, "alpha") * (self.size - self._flat(kind, "boundary"))
            + self.on
            + self._flat(kind, "offset")
        )
        return self._split(kind, z)

    def alpha_beta(self, kind: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Eq 14's alpha and beta per layer, (n_sets, n) each."""
        alpha = self._flat(kind, "alpha")
        beta = self.on - alpha * self._flat(kind, "boundary") + self._flat(kind, "offset")
        return self._split(kind, alpha), self._split(kind, beta)

    def forward(self, rows: torch.Tensor) -> Gates:
        """Gates at `size` of the (B,) gate-set indices `rows`: sampled while L0-based DS
        trains, noiseless otherwise."""
        gate = self._sample if self.training and self.trainable else self._deterministic
        return self._map(lambda a: gate(a[rows]))

    @torch.no_grad()
    def at(self, size: float, row: int) -> Gates:
        """Noiseless (1, n) gates of gate set `row` at network size `size`."""
        before, self.size = self.size, size
        try:
            return self.deterministic(row)
        finally:
            self.size = before

    def meta(self) -> dict:
        return {
            "names": self.names,
            "unit": self.unit,
            "grid": self.grid,
            "trainable": self.trainable,
            "hard_concrete": {"left": self.left, "right": self.right, "temperature": self.beta},
            "widths": self.widths,
        }


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def from_scores(
    scores: dict[str, Gates],
    unit: dict[str, float],
    grid: Sequence[float],
    trainable: bool,
    rank_by: str = "score",
    hard_concrete: dict | None = None,
) -> DynamicGates:
    """DS gates initialised by Eq 16 from each gate set's gradient ranking (`scores` maps
    "shared", or each language, to its importance scores, embedding ranks included)."""
    if any(g.emb is None for g in scores.values()):
        raise ValueError("Dynamic Sparsification ranks embedding ranks too: scores need `emb`")
    hc = hard_concrete or {}
    pairs = [boundaries(g, unit, grid, rank_by) for g in scores.values()]
    first = next(iter(scores.values()))
    widths = {k: [t.numel() for _, t in _by_layer(first, k)] for k in KINDS}
    return DynamicGates(
        list(scores),
        {k: torch.stack([_flat(t, k) for t, _ in pairs]) for k in KINDS},
        {k: torch.stack([_flat(d, k) for _, d in pairs]) for k in KINDS},
        widths,
        unit,
        grid,
        trainable,
        left=hc.get("left", -0.1),
        right=hc.get("right", 1.1),
        beta=hc.get("temperature", 2 / 3),
    )


def _flat(g: Gates, kind: str) -> torch.Tensor:
    """One gate set's values of `kind` over every layer, concatenated."""
    return torch.cat([t.reshape(-1) for _, t in _by_layer(g, kind)])


# ---- checkpoints and cutting ----------------------------------------------------------------


def save_dynamic(model: MaskedLM, gates: DynamicGates, directory, extra: dict | None = None):
    """A DS checkpoint: the model's weights, and alpha, beta with the grid (`dynamic`)."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in gates.state_dict().items()}
    files = {GATES_FILE: save(tensors)}
    save_model(model, directory, extra={**(extra or {}), "dynamic": gates.meta()}, files=files)


def load_dynamic(directory) -> tuple[MaskedLM, DynamicGates]:
    """The model and DS gates of a checkpoint that `save_dynamic` wrote."""
    from safetensors.torch import load

    from polyprune.model import load_model

    meta = read_checkpoint_meta(directory).get("dynamic")
    if meta is None:
        raise CheckpointError(
            f"{directory}: not a Dynamic Sparsification checkpoint (config.json has no 'dynamic')"
        )
    model = load_model(directory)
    state = load(read_checkpoint_file(directory, GATES_FILE))
    widths = meta["widths"]
    blank = {k: torch.ones(len(meta["names"]), sum(widths[k])) for k in KINDS}
    hc = meta["hard_concrete"]
    gates = DynamicGates(
        meta["names"], blank, blank, widths, meta["unit"], meta["grid"], meta["trainable"],
        hc["left"], hc["right"], hc["temperature"],
    )  # fmt: skip
    try:
        gates.load_state_dict(state)
    except RuntimeError as e:
        mismatch = " ".join(str(e).split())
        raise CheckpointError(
            f"{directory}/{GATES_FILE}: does not match config.json ({mismatch})"
        ) from e
    return model, gates


def check_sparsity(gates: DynamicGates, sparsity: float) -> float:
    lo, hi = gates.grid[0], gates.grid[-1]
    if not lo <= sparsity < hi:
        raise ConfigError(f"sparsity {sparsity}: outside the DS grid's range [{lo}, {hi})")
    return sparsity


def cut(
    model: MaskedLM, gates: DynamicGates, sparsity: float, language: str | None = None
) -> tuple[MaskedLM, dict]:
    """The model at `sparsity`: physically smaller (per-layer head counts and FFN widths,
    embedding ranks removed) when the gates are shared or `language` picks one set; else the
    model with one gate set per language. Returns it and what each gate set reached."""
    size = 1 - check_sparsity(gates, sparsity)
    names = gates.names
    if language is not None:
        if language not in names:
            raise ConfigError(f"language {language!r}: this DS model has gate sets {names}")
        names = [language]
    sets = {name: gates.at(size, gates.names.index(name)) for name in names}
    single = len(sets) == 1
    gated = gated_model(model, {"shared" if single else k: g for k, g in sets.items()})
    small = physically_prune(gated) if single else gated
    reached = {
        name: {
            "sparsity": 1 - kept_weight(g, gates.unit, KINDS) / _full(g, gates.unit),
            "encoder_sparsity": 1
            - kept_weight(g, gates.unit, ("heads", "ffn")) / _full(g, gates.unit, ("heads", "ffn")),
        }
        for name, g in sets.items()
    }
    return small, {"sparsity": sparsity, "language": language, "gate_sets": reached}


def _full(g: Gates, unit: dict[str, float], kinds=KINDS) -> float:
    return kept_weight(Gates.ones_like(g), unit, kinds)
