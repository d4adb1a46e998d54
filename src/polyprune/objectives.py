"""What a training run minimises, as one module that the engines train (DDP or DeepSpeed wrap it,
checkpoints hold its state): the MLM loss of a model with its fixed gates (the dense and
gradient-pruned cells); the pruning algorithms add learned gates, loss terms and a teacher.

An objective's `forward(inputs, labels, lang)` returns the loss and a dict of floats to log;
`param_groups(s)` its optimizer groups, each with the factor of its learning-rate schedule;
`model` is the MaskedLM the run trains, `result()` the one it produces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from polyprune.gates import Gates, gate_row
from polyprune.model import MaskedLM
from polyprune.prune import SCOPES


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then linear decay to zero (XLM-R / RoBERTa)."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def weight_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """The trainable parameters of `module` in two groups: no weight decay on biases and
    LayerNorm weights (tensors of fewer than 2 dimensions)."""
    decay, no_decay = [], []
    for p in module.parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    return [
        {"params": params, "weight_decay": wd}
        for params, wd in ((decay, weight_decay), (no_decay, 0.0))
        if params
    ]


@dataclass
class DistilSettings:
    """DistilBERT's soft targets (config `distillation`): alpha_ce * KL(teacher || student) at
    `temperature` (times T²) + alpha_mlm * the student's MLM loss."""

    temperature: float = 2.0
    alpha_ce: float = 5.0
    alpha_mlm: float = 2.0


class Objective(nn.Module):
    """A model to train and, for distillation, a frozen teacher. The teacher is kept out of the
    module's children so that checkpoints, DDP and the optimizer never hold its weights; it
    follows the objective's device and dtype."""

    def __init__(self, model: MaskedLM, teacher: MaskedLM | None, distil: DistilSettings | None):
        super().__init__()
        self.model, self.distil = model, distil
        object.__setattr__(self, "teacher", teacher)
        if teacher is not None:
            teacher.requires_grad_(False).eval()

    def _apply(self, fn, recurse=True):
        if self.teacher is not None:
            self.teacher._apply(fn, recurse)
        return super()._apply(fn, recurse)

    def task_loss(self, inputs, labels, lang: str, gates: Gates | None = None):
        """The MLM loss, or with a teacher the distillation loss; and the parts to log."""
        if self.teacher is None:
            gate_set = self.model.gate_set_of(lang)
            return self.model(inputs, labels=labels, gate_set=gate_set, gates=gates), {}
        from polyprune.distil import distil_step_loss

        spec = self.distil
        loss, parts = distil_step_loss(
            self.model, self.teacher, inputs, labels, lang=lang, gates=gates,
            temperature=spec.temperature, alpha_ce=spec.alpha_ce, alpha_mlm=spec.alpha_mlm,
        )  # fmt: skip
        return loss, {"mlm": parts["mlm"], "distil": parts["ce"]}

    def save(self, directory, extra: dict) -> None:
        """The trained model as a checkpoint (`extra`: what config.json records beside it)."""
        from polyprune.model import save_model

        save_model(self.result().cpu().float(), directory, extra=extra)

    def half_precision_modules(self) -> list[nn.Module]:
        """What DeepSpeed may cast to fp16/bf16 (learned gates stay fp32)."""
        return [self.model, *([self.teacher] if self.teacher is not None else [])]


class MLM(Objective):
    """Masked-language modelling (or distillation) with the model's own gates: none, shared or
    one set per language (the dense, gradient-pruned and DistilXLM-R cells)."""

    def __init__(self, model: MaskedLM, teacher=None, distil: DistilSettings | None = None):
        super().__init__(model, teacher, distil)

    def forward(self, inputs, labels, lang: str):
        return self.task_loss(inputs, labels, lang)

    def param_groups(self, s) -> list[dict]:
        def schedule(step):
            return lr_factor(step, s.warmup_steps, s.steps)

        return [{**g, "schedule": schedule} for g in weight_groups(self.model, s.weight_decay)]

    def result(self) -> MaskedLM:
        return self.model


@dataclass
class L0Settings:
    """How a cell's gates are learned (config `pruning.l0`; docs/method.md). Vanilla L0 (Eq 10)
    has `lam` and no target; improved L0 has the cell's target sparsity (Eq 11) and, with
    `diversity` > 0, the diversity loss (Eq 12) under the family prior."""

    target_sparsity: float | None = None
    lam: float = 0.0
    constraint: str = "absolute"  # the paper's Eq 11 | lagrangian: CoFiPruning's λ ascent
    constraint_weight: float = 1.0
    diversity: float = 0.0
    alpha_lr: float = 0.1
    lagrangian_lr: float = 0.1
    alpha_only_steps: int = 0  # Appendix A: steps that train log alpha only, before the weights
    scope: str = "encoder"


class L0(Objective):
    """Continued pretraining with hard-concrete gates learned alongside the weights
    (Louizos et al.; CoFiPruning's split): the gate module hands each batch its language's
    sampled gates, the loss adds the L0 terms. The result is the model with binary gates in its
    gate table (`hard_gates`: one set, or one per language)."""

    def __init__(
        self, model: MaskedLM, gates, spec: L0Settings, prior=None, teacher=None, distil=None
    ):
        from polyprune.l0 import Lagrangian

        super().__init__(model, teacher, distil)
        self.gates, self.spec = gates, spec
        self.kinds = SCOPES[spec.scope]
        improved = spec.target_sparsity is not None
        self.lagrangian = Lagrangian() if improved and spec.constraint == "lagrangian" else None
        if spec.diversity:
            self.register_buffer("prior", prior)

    def forward(self, inputs, labels, lang: str):
        from polyprune.l0 import diversity_loss, l0_penalty, sparsity_constraint

        row = gate_row(self.gates.names, lang)
        gates = self.gates(torch.full((len(inputs),), row, device=inputs.device))
        loss, parts = self.task_loss(inputs, labels, lang, gates)
        parts.setdefault("mlm", loss.item())
        spec = self.spec
        if spec.lam:
            loss = loss + spec.lam * l0_penalty(self.gates, self.kinds)
        if spec.target_sparsity is not None:
            loss = loss + spec.constraint_weight * sparsity_constraint(
                self.gates, spec.target_sparsity, self.kinds, spec.constraint, self.lagrangian
            )
        if spec.diversity:
            loss = loss + spec.diversity * diversity_loss(self.gates, self.prior, self.kinds)
        expected = self.gates.expected_sparsity(None, self.kinds)
        return loss, {**parts, "expected_sparsity": expected.mean().item()}

    def param_groups(self, s) -> list[dict]:
        after = self.spec.alpha_only_steps

        def weights(step):
            return 0.0 if step < after else lr_factor(step - after, s.warmup_steps, s.steps - after)

        def constant(_):
            return 1.0

        groups = [{**g, "schedule": weights} for g in weight_groups(self.model, s.weight_decay)]
        groups.append(
            {"params": list(self.gates.parameters()), "lr": self.spec.alpha_lr,
             "weight_decay": 0.0, "schedule": constant}
        )  # fmt: skip
        if self.lagrangian is not None:
            groups.append(
                {"params": list(self.lagrangian.parameters()), "lr": self.spec.lagrangian_lr,
                 "weight_decay": 0.0, "schedule": constant}
            )  # fmt: skip
        return groups

    @torch.no_grad()
    def hard_gates(self, row: int) -> Gates:
        """Binary gates of gate set `row`: its expected size (Eq 9) says how much it keeps, its
        log alpha which components (CoFiPruning's deterministic mask). Louizos' test-time
        estimator alone would keep every component whose log alpha exceeds -ln 11, far more
        than the expected size when log alpha sits near the Eq 9 threshold."""
        from polyprune.prune import select_components

        g = self.gates
        log_alpha = Gates(
            heads=[a[row] for a in g.heads],
            ffn=[a[row] for a in g.ffn],
            emb=None if g.emb is None else g.emb[row],
        )
        sparsity = round(float(g.expected_sparsity(row, self.kinds)), 6)
        return select_components(
            log_alpha, g.unit, min(max(sparsity, 1e-6), 1 - 1e-6), self.spec.scope
        )

    def result(self) -> MaskedLM:
        from polyprune.prune import gated_model

        names = self.gates.names
        return gated_model(self.model, {name: self.hard_gates(i) for i, name in enumerate(names)})


@dataclass
class DynamicSettings:
    """How a Dynamic Sparsification model trains (config `pruning.dynamic`): gradient-based DS
    trains the weights under its frozen, noiseless gates; L0-based DS (`trainable` gates) also
    trains alpha and beta, with Eq 11 pulling every gate set's expected size to the sampled t
    (weight `constraint_weight`, Appendix A: 128) and Eq 12's diversity loss."""

    constraint_weight: float = 128.0
    diversity: float = 0.0
    alpha_lr: float = 0.1


class Dynamic(Objective):
    """Dynamic Sparsification (section 6.1): every micro-batch draws a target size t from the
    grid (torch's generator, which the loop seeds per micro-batch) and trains the subnetwork
    that the DS gates keep at t, one gate set or each language's own."""

    def __init__(self, model: MaskedLM, gates, spec: DynamicSettings, prior=None):
        super().__init__(model, None, None)
        self.gates, self.spec = gates, spec
        if spec.diversity and gates.trainable:
            self.register_buffer("prior", prior)

    def forward(self, inputs, labels, lang: str):
        from polyprune.ds import KINDS, training_sizes
        from polyprune.l0 import diversity_loss, sparsity_constraint

        sizes = training_sizes(self.gates.grid)
        size = sizes[int(torch.randint(len(sizes), ()))]
        self.gates.size = size
        row = gate_row(self.gates.names, lang)
        gates = self.gates(torch.full((len(inputs),), row, device=inputs.device))
        loss, _ = self.task_loss(inputs, labels, lang, gates)
        parts = {"mlm": loss.item(), "size": size}
        if self.gates.trainable:
            spec = self.spec
            loss = loss + spec.constraint_weight * sparsity_constraint(self.gates, 1 - size, KINDS)
            if spec.diversity:
                loss = loss + spec.diversity * diversity_loss(self.gates, self.prior, KINDS)
        return loss, parts

    def param_groups(self, s) -> list[dict]:
        def schedule(step):
            return lr_factor(step, s.warmup_steps, s.steps)

        groups = [{**g, "schedule": schedule} for g in weight_groups(self.model, s.weight_decay)]
        if self.gates.trainable:
            groups.append(
                {"params": list(self.gates.parameters()), "lr": self.spec.alpha_lr,
                 "weight_decay": 0.0, "schedule": lambda _: 1.0}
            )  # fmt: skip
        return groups

    def result(self) -> MaskedLM:
        return self.model

    def save(self, directory, extra: dict) -> None:
        from polyprune.ds import save_dynamic

        save_dynamic(self.model.cpu().float(), self.gates.cpu().float(), directory, extra)
