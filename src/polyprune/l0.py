"""L0 regularisation with hard-concrete gates (Louizos et al. 2018; the paper's section 4.2).

`HardConcrete` turns a pre-activation per prunable component and gate set into `Gates` for
`MaskedLM.forward(..., gates=...)`: sampled in training mode (Eqs 5-8), deterministic in eval
mode. `HardConcreteGates` (L0) learns that pre-activation, log alpha, directly;
`polyprune.ds.DynamicGates` (Dynamic Sparsification) computes it from the target size. The loss
terms are plain functions that the training loop adds to the MLM loss: the vanilla L0 penalty
(Eq 10), the sparsity constraint (Eq 11, absolute or Lagrangian) and the diversity loss (Eq 12).

Sizes use the Appendix B weights (`config.component_weights`) and the kinds of `prune.SCOPES`, so
that `expected_sparsity` of a gate set whose gates are all 0 or 1 equals `gates.sparsity` and
`prune.achieved_sparsity` of its deterministic gates.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from polyprune.gates import Gates
from polyprune.prune import SCOPES

ENCODER = SCOPES["encoder"]
EPS = 1e-6  # keeps log u and log(1 - u) finite


class HardConcrete(nn.Module):
    """Hard-concrete gates (Eqs 5-8) over a pre-activation per component and gate set, which a
    subclass supplies as `log_alphas(kind)`: tensors (n_sets, n) per layer ("heads", "ffn") or
    one ("emb"). Row i is gate set `names[i]` ("shared", or one per language); `unit` holds the
    Appendix B weights of each kind."""

    def __init__(self, names: list[str], unit: dict[str, float], left=-0.1, right=1.1, beta=2 / 3):
        super().__init__()
        self.names, self.unit = list(names), dict(unit)
        self.left, self.right, self.beta = left, right, beta

    def log_alphas(self, kind: str) -> list[torch.Tensor]:
        raise NotImplementedError

    def _map(self, fn) -> Gates:
        emb = self.log_alphas("emb")
        return Gates(
            heads=[fn(a) for a in self.log_alphas("heads")],
            ffn=[fn(a) for a in self.log_alphas("ffn")],
            emb=fn(emb[0]) if emb else None,
        )

    def _stretch(self, s: torch.Tensor) -> torch.Tensor:
        """Eqs 7-8: stretch s from (0, 1) to (l, r), then clamp to [0, 1]."""
        return (s * (self.right - self.left) + self.left).clamp(0, 1)

    def _sample(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """Eqs 5-8 with torch's global generator: one independent draw per row and component."""
        u = torch.rand_like(log_alpha).clamp(EPS, 1 - EPS)
        return self._stretch(torch.sigmoid((u.log() - (1 - u).log() + log_alpha) / self.beta))

    def _deterministic(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """Louizos' test-time estimator: the noiseless gate, clamp(sigmoid(log alpha)(r-l) + l)."""
        return self._stretch(torch.sigmoid(log_alpha))

    def forward(self, rows: torch.Tensor) -> Gates:
        """Gates of the (B,) gate-set indices `rows`, each (B, n): sampled in training mode (one
        draw per example), deterministic in eval mode."""
        gate = self._sample if self.training else self._deterministic
        return self._map(lambda a: gate(a[rows]))

    @torch.no_grad()
    def deterministic(self, row: int) -> Gates:
        """Detached (1, n) deterministic gates of gate set `row`, for `GateTable.set_row`;
        values may be fractional, 0 means pruned."""
        return self._map(lambda a: self._deterministic(a[row : row + 1]))

    def prob_nonzero(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """Eq 9: P(g != 0) = sigmoid(log alpha - beta log(-l / r))."""
        return torch.sigmoid(log_alpha - self.beta * math.log(-self.left / self.right))

    def full_size(self, kinds=ENCODER) -> float:
        """Weighted size (Appendix B units) of every component of `kinds` in one gate set."""
        return sum(self.unit[k] * a.shape[1] for k in kinds for a in self.log_alphas(k))

    def expected_kept(self, row: int | None = None, kinds=ENCODER) -> torch.Tensor:
        """Expected weighted size that gate set `row` keeps (Eq 9, Appendix B weights): a scalar,
        or with row=None a (n_sets,) tensor for every set."""
        kept = sum(
            self.unit[k] * self.prob_nonzero(a).sum(-1) for k in kinds for a in self.log_alphas(k)
        )
        return kept if row is None else kept[row]

    def expected_sparsity(self, row: int | None = None, kinds=ENCODER) -> torch.Tensor:
        """1 - expected kept / full size, weighted as `gates.sparsity`; row=None: every set."""
        return 1 - self.expected_kept(row, kinds) / self.full_size(kinds)


class HardConcreteGates(HardConcrete):
    """L0's gates: one learnable log alpha per layer, kind, component and gate set.

    Initialisation: N(init_mean, init_std). The default mean 3.0 lies above ln 11 ≈ 2.4, where
    the deterministic gate reaches 1, so continued pretraining starts from the dense model
    (P(g != 0) ≈ 0.99; ~80% of samples are exactly 1) while Eq 9's gradient is far from zero.
    The small std only breaks ties, as in the reference code (which draws N(log((1-p)/p), 0.01)
    from a drop rate p; CoFiPruning starts heads at mean 10, FFN units at mean 0).
    """

    def __init__(
        self,
        names: list[str],
        heads: list[int],
        ffn: list[int],
        emb_rank: int | None,
        unit: dict[str, float],
        left: float = -0.1,
        right: float = 1.1,
        beta: float = 2 / 3,
        init_mean: float = 3.0,
        init_std: float = 0.01,
    ):
        super().__init__(names, unit, left, right, beta)
        n = len(self.names)

        def log_alpha(width):
            return nn.Parameter(torch.randn(n, width) * init_std + init_mean)

        self.heads = nn.ParameterList(log_alpha(h) for h in heads)
        self.ffn = nn.ParameterList(log_alpha(f) for f in ffn)
        self.emb = log_alpha(emb_rank) if emb_rank else None

    def log_alphas(self, kind: str) -> list[torch.Tensor]:
        if kind == "emb":
            return [] if self.emb is None else [self.emb]
        return list(getattr(self, kind))


class Lagrangian(nn.Module):
    """λ1, λ2 of CoFiPruning's constraint, λ1 gap + λ2 gap², trained by gradient ascent: a hook
    negates their gradients, since optimizers refuse a negative learning rate. Tensor hooks do not
    survive copy.deepcopy: build a new Lagrangian and load the state dict instead."""

    def __init__(self):
        super().__init__()
        self.lambda1 = nn.Parameter(torch.zeros(()))
        self.lambda2 = nn.Parameter(torch.zeros(()))
        for p in (self.lambda1, self.lambda2):
            p.register_hook(torch.neg)

    def forward(self, gap: torch.Tensor) -> torch.Tensor:
        return (self.lambda1 * gap + self.lambda2 * gap**2).sum()


def l0_penalty(gates: HardConcrete, kinds=ENCODER) -> torch.Tensor:
    """Eq 10's L_0, summed over gate sets. Each set's weighted expected L0 is divided by its full
    weighted size, so L_0 is a sum of expected kept shares in [0, 1] and λ does not depend on
    the model's size."""
    return (gates.expected_kept(None, kinds) / gates.full_size(kinds)).sum()


def sparsity_constraint(
    gates: HardConcrete,
    target_sparsity: float,
    kinds=ENCODER,
    form: str = "absolute",
    lagrangian: Lagrangian | None = None,
) -> torch.Tensor:
    """Eq 11 pulling every gate set's expected sparsity s_i to the target t: "absolute" is the
    paper's sum_i |s_i - t|; "lagrangian" is CoFiPruning's sum_i λ1 (s_i - t) + λ2 (s_i - t)²."""
    gap = gates.expected_sparsity(None, kinds) - target_sparsity  # (n_sets,)
    if form == "absolute":
        return gap.abs().sum()
    if form == "lagrangian":
        if lagrangian is None:
            raise ValueError('form "lagrangian" needs a Lagrangian')
        return lagrangian(gap)
    raise ValueError(f'form must be "absolute" or "lagrangian", got {form!r}')


def diversity_loss(gates: HardConcrete, prior: torch.Tensor, kinds=ENCODER) -> torch.Tensor:
    """Eq 12: || P ⊙ (G Gᵀ) ⊙ (1 - I) ||_F, G (n_sets, N) each set's Eq 9 probabilities P(g != 0)
    over the N components of `kinds` (smooth, unlike the clamped deterministic gates). G Gᵀ is
    divided by N, so each entry is the mean overlap of two sets, in [0, 1], whatever the model's
    size."""
    g = torch.cat([gates.prob_nonzero(a) for k in kinds for a in gates.log_alphas(k)], dim=1)
    overlap = g @ g.T / g.shape[1]  # (n_sets, n_sets)
    off_diagonal = 1 - torch.eye(len(g), device=g.device)
    return torch.linalg.matrix_norm(prior.to(g) * overlap * off_diagonal)


def family_prior(languages: list[str], families: dict[str, str], enabled=True) -> torch.Tensor:
    """Eq 12's P: P_ij = 0 when languages i and j share a family, else 1; all ones if disabled."""
    n = len(languages)
    if not enabled:
        return torch.ones(n, n)
    fam = [families[code] for code in languages]
    return torch.tensor([[float(a != b) for b in fam] for a in fam])
