"""Distillation baselines: DistilXLM-R (half of the layers, as DistilBERT) and distillation from
the dense teacher (Table 2's last row).

DistilBERT (Sanh et al., 2019) initialises its student from one layer out of two of the teacher,
with the teacher's embeddings and MLM head, and trains it on alpha_ce * L_ce + alpha_mlm * L_mlm
(+ alpha_cos * L_cos, a cosine loss on hidden states, not used here), where L_ce is the soft-target
loss of Hinton et al. (2015) at temperature T and L_mlm the student's own MLM loss. Its published
run uses T = 2.0, alpha_ce = 5.0, alpha_mlm = 2.0 (and alpha_cos = 1.0); callers pass them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from polyprune.gates import Gates
from polyprune.model import MaskedLM
from polyprune.prune import keep_layers


def student_from_teacher(teacher: MaskedLM, keep: str | list[int] = "every_other") -> MaskedLM:
    """A student with the teacher's layers `keep` (in order), embeddings, MLM head and hidden size.

    "every_other" keeps layers 0, 2, 4, ... (half of the layers, rounded up): DistilBERT's "one
    layer out of two". (Its extraction script actually takes BERT-base layers [0, 2, 4, 7, 9, 11];
    pass that list to copy it.) Per-layer head counts and FFN widths, and a gate table's rows for
    the kept layers (every gate set, shared or one per language), are carried over.
    """
    n = teacher.cfg.layers
    if keep == "every_other":
        keep = list(range(0, n, 2))
    if isinstance(keep, str) or not keep or list(keep) != sorted(set(keep) & set(range(n))):
        raise ValueError(f"keep: 'every_other' or increasing layer indices below {n}, got {keep}")
    return keep_layers(teacher, list(keep))


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    mask_only: bool = False,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(softmax(teacher / T) || softmax(student / T)) * T^2, averaged over positions.

    The T^2 factor keeps the soft targets' gradients on the scale of the hard-label loss (Hinton
    et al.). Positions: with `mask_only`, those that carry an MLM label (labels != -100); by
    default every non-padding position (`attention_mask`; all positions without one), as
    DistilBERT, whose `--restrict_ce_to_mask` (off by default) selects the masked ones. No
    gradient reaches `teacher_logits`; the loss is computed in fp32.
    """
    if mask_only:
        positions = labels.ne(-100)
    elif attention_mask is not None:
        positions = attention_mask.bool()
    else:
        positions = torch.ones_like(labels, dtype=torch.bool)
    s = student_logits[positions].float() / temperature
    t = teacher_logits.detach()[positions].float() / temperature
    kl = F.kl_div(
        F.log_softmax(s, -1), F.log_softmax(t, -1), reduction="batchmean", log_target=True
    )
    return kl * temperature**2


def distil_step_loss(
    student: MaskedLM,
    teacher: MaskedLM,
    input_ids: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float,
    alpha_ce: float,
    alpha_mlm: float,
    attention_mask: torch.Tensor | None = None,
    lang: str | None = None,
    gates: Gates | None = None,
    mask_only: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """DistilBERT's alpha_ce * L_ce + alpha_mlm * L_mlm for one batch of language `lang`, and its
    parts {"ce", "mlm", "total"} as floats.

    The teacher runs in eval mode without gradients. A model with one gate set per language runs
    with `lang`'s, a shared gate set applies to every language; `gates` (learned gates, e.g. L0
    with distillation from the dense teacher) replace the student's stored ones. L_mlm is the
    student's cross-entropy on the masked positions, as `MaskedLM.forward` with labels.
    """
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(input_ids, attention_mask, gate_set=teacher.gate_set_of(lang))
    logits = student(input_ids, attention_mask, gate_set=student.gate_set_of(lang), gates=gates)
    selected = labels.ne(-100)
    mlm = F.cross_entropy(logits[selected].float(), labels[selected])
    ce = distillation_loss(logits, teacher_logits, labels, temperature, mask_only, attention_mask)
    total = alpha_ce * ce + alpha_mlm * mlm
    return total, {"ce": ce.item(), "mlm": mlm.item(), "total": total.item()}
