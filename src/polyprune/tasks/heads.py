"""Task models on a MaskedLM's encoder (its MLM head unused), and the gates each example runs with.

Heads follow transformers' XLM-R task models: sentence-pair classification on the <s> token
(dropout, dense, tanh, dropout, out_proj), token classification (dropout, linear) and extractive
QA (linear to start/end logits). In the non-shared setting every example runs with its own
language's gate set, so a batch may mix languages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from polyprune.errors import PolypruneError
from polyprune.gates import per_language
from polyprune.model import MaskedLM

KINDS = ("pair", "token", "qa")


class LanguageCoverageError(PolypruneError):
    """Task data in a language the model has no gate set for."""


@dataclass(frozen=True)
class Lengths:
    """Maximum tokens per sequence (XTREME's defaults); QA contexts are cut into windows of
    `qa` tokens overlapping by `qa_stride`."""

    pair: int = 128
    token: int = 128
    qa: int = 384
    qa_stride: int = 128


def check_lengths(model: MaskedLM, lengths: Lengths, kind: str) -> None:
    """The length of the task type `kind` fits the model's positions."""
    limit, length = model.cfg.max_tokens, getattr(lengths, kind)
    if length > limit:
        raise ValueError(
            f"max length {kind}={length} exceeds the {limit} tokens this model's"
            f" {model.cfg.max_positions} positions allow"
        )


def per_language_gates(model: MaskedLM) -> bool:
    table = model.gate_table
    return table is not None and per_language(table.names)


def coverage_problems(model: MaskedLM, languages: Iterable[str]) -> list[str]:
    """Why `model` cannot run data in `languages`, one line per problem ([] when it can).

    Only a per-language (non-shared) model can lack a language: it must run every example with
    that language's own gate set.
    """
    if not per_language_gates(model):
        return []
    names = model.gate_table.names
    missing = sorted(set(languages) - set(names))
    if not missing:
        return []
    return [f"no gate set for language(s) {missing}; the model has gate sets for {names}"]


def check_coverage(model: MaskedLM, languages: Iterable[str], what: str) -> None:
    problems = coverage_problems(model, languages)
    if problems:
        raise LanguageCoverageError(f"{what}: {'; '.join(problems)}")


def gate_rows(model: MaskedLM, langs: Sequence[str]) -> torch.Tensor | None:
    """The gate set of every example: a (B,) index tensor for a per-language model, else None."""
    if not per_language_gates(model):
        return None
    check_coverage(model, langs, "gate sets")
    names = model.gate_table.names
    return torch.tensor([names.index(lang) for lang in langs], dtype=torch.long)


class ClassificationHead(nn.Module):
    def __init__(self, hidden: int, n_labels: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, n_labels)

    def forward(self, states):
        x = self.dropout(states[:, 0])
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out_proj(x)


class TaggingHead(nn.Module):
    def __init__(self, hidden: int, n_labels: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, n_labels)

    def forward(self, states):
        return self.classifier(self.dropout(states))


class SpanHead(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.qa_outputs = nn.Linear(hidden, 2)

    def forward(self, states):
        return self.qa_outputs(states)  # (B, T, 2): start and end logits


class TaskModel(nn.Module):
    """A MaskedLM's encoder with a task head. `labels` name the classes (pair, token)."""

    def __init__(
        self,
        encoder: MaskedLM,
        task: str,
        kind: str,
        labels: Sequence[str],
        lengths: Lengths,
        seed: int,
    ):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"no task model for type {kind!r}; expected one of {KINDS}")
        check_lengths(encoder, lengths, kind)
        self.encoder, self.task, self.kind = encoder, task, kind
        self.labels, self.lengths = list(labels), lengths
        hidden, dropout = encoder.cfg.hidden, encoder.cfg.dropout
        if kind == "pair":
            self.head = ClassificationHead(hidden, len(self.labels), dropout)
        elif kind == "token":
            self.head = TaggingHead(hidden, len(self.labels), dropout)
        else:
            self.head = SpanHead(hidden)
        _init_head(self.head, seed)

    def forward(self, input_ids, attention_mask, gate_set=None, token_types=None):
        # the pair head reads the <s> token alone
        first = input_ids.new_zeros(len(input_ids), 1) if self.kind == "pair" else None
        states = self.encoder.encode(
            input_ids, attention_mask, gate_set=gate_set, token_types=token_types, positions=first
        )
        return self.head(states)

    def loss(self, logits, targets):
        """targets: class (B,) for pair, token labels (B, T) with -100 to skip for token,
        start/end token (B, 2) for QA."""
        if self.kind == "pair":
            return F.cross_entropy(logits, targets)
        if self.kind == "token":
            return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        start, end = logits.unbind(-1)
        return (F.cross_entropy(start, targets[:, 0]) + F.cross_entropy(end, targets[:, 1])) / 2


def _init_head(head: nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for module in head.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02, generator=generator)
            nn.init.zeros_(module.bias)
