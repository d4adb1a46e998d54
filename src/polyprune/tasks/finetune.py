"""Fine-tuning, prediction and scoring of one grid point (learning rate x epochs) of one task.

Records are the normalised ones of docs/tasks.md. The caller picks the training data: the source
language's for zero-shot, the union of every language's for translate-train-all. Fine-tuning
trains the given MaskedLM in place (load a fresh one per grid point). Every example runs with its
own language's gate set when the model has one per language.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from polyprune.adamw import FusedAdamW
from polyprune.model import MaskedLM
from polyprune.objectives import lr_factor, weight_groups
from polyprune.tasks import metrics, qa
from polyprune.tasks.heads import Lengths, TaskModel, check_coverage, gate_rows
from polyprune.tasks.sources import MLQA_LANGS
from polyprune.tasks.spec import LABELS, TASK_TYPES

IGNORE = -100  # token label of sub-tokens after a word's first, and of special tokens
UNTAGGED = "O"  # prediction for a word that has no sub-token of its own


@dataclass
class FinetuneSettings:
    lr: float
    epochs: int
    batch_size: int = 32
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0  # XTREME's default
    adam_eps: float = 1e-8
    grad_clip: float = 1.0
    seed: int = 0
    lengths: Lengths = field(default_factory=Lengths)
    log_every: int = 50
    # Batches drawn from pools of this many batches' rows sorted by length, so that a batch
    # pads little (Hugging Face's group_by_length); 1: plain random batches.
    length_pool: int = 50


def task_type(task: str) -> str:
    if task not in TASK_TYPES:
        raise ValueError(f"unknown task {task!r}; known tasks: {sorted(TASK_TYPES)}")
    return TASK_TYPES[task]


# ---- records -> model rows ----------------------------------------------------------------


@dataclass
class Rows:
    """Model inputs, one row per sequence, with what maps rows back to their records.

    A pair is one row; a long sentence to tag is cut into word chunks that fit (as XTREME's
    preprocessing does), a long QA context into overlapping windows. `word_ids[row][t]` is the
    record's word index of token t (token rows); `windows` are the QA windows.
    """

    input_ids: list[list[int]]
    record: list[int]
    targets: list | None = None
    word_ids: list[list[int | None]] | None = None
    windows: qa.QAWindows | None = None
    token_types: list[list[int]] | None = None  # segment ids, where the tokenizer gives them


def make_rows(task_model: TaskModel, tokenizer, records: Sequence[dict], train: bool) -> Rows:
    """Tokenize `records`; with `train`, also the training targets."""
    lengths = task_model.lengths
    if task_model.kind == "pair":
        return pair_rows(tokenizer, records, task_model.labels if train else None, lengths.pair)
    if task_model.kind == "token":
        return token_rows(tokenizer, records, task_model.labels if train else None, lengths.token)
    return qa_rows(tokenizer, records, train, lengths.qa, lengths.qa_stride)


def pair_rows(tokenizer, records, labels: Sequence[str] | None, max_length: int) -> Rows:
    encoded = tokenizer(
        [r["sentence1"] for r in records],
        [r["sentence2"] for r in records],
        truncation=True,
        max_length=max_length,
    )
    targets = None if labels is None else [_label_index(labels, r["label"]) for r in records]
    return Rows(
        encoded["input_ids"],
        list(range(len(records))),
        targets,
        token_types=encoded.get("token_type_ids"),
    )


def token_rows(tokenizer, records, labels: Sequence[str] | None, max_length: int) -> Rows:
    """Rows of word chunks; only a word's first sub-token carries its tag, the rest IGNORE."""
    chunks = [
        (index, span)
        for index, spans in enumerate(_word_chunks(tokenizer, records, max_length))
        for span in spans
    ]
    encoded = tokenizer(
        [records[index]["tokens"][first:last] for index, (first, last) in chunks],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
    )
    word_ids = [
        [None if w is None else w + first for w in encoded.word_ids(row)]
        for row, (_, (first, _last)) in enumerate(chunks)
    ]
    rows = Rows(encoded["input_ids"], [index for index, _ in chunks], word_ids=word_ids)
    if labels is not None:
        rows.targets = [
            [
                IGNORE if t not in firsts else _label_index(labels, records[index]["tags"][w])
                for t, w in enumerate(words)
            ]
            for index, words, firsts in zip(
                rows.record, word_ids, map(first_subtokens, word_ids), strict=True
            )
        ]
    return rows


def first_subtokens(word_ids: Sequence[int | None]) -> set[int]:
    """Positions of the first sub-token of each word."""
    return {t for t, w in enumerate(word_ids) if w is not None and (t == 0 or word_ids[t - 1] != w)}


def _word_chunks(tokenizer, records, max_length: int) -> list[list[tuple[int, int]]]:
    """Per record, consecutive word spans whose sub-tokens fit into one sequence (a word too
    long for any sequence alone, truncated later)."""
    encoded = tokenizer(
        [r["tokens"] for r in records], is_split_into_words=True, add_special_tokens=False
    )
    room = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    return [
        _spans_within(Counter(w for w in encoded.word_ids(i) if w is not None), n_words, room)
        for i, n_words in enumerate(len(r["tokens"]) for r in records)
    ]


def _spans_within(n_subtokens: Counter, n_words: int, room: int) -> list[tuple[int, int]]:
    spans, first, used = [], 0, 0
    for w in range(n_words):
        if used + n_subtokens[w] > room and w > first:
            spans.append((first, w))
            first, used = w, 0
        used += n_subtokens[w]
    return [*spans, (first, n_words)]


def qa_rows(tokenizer, records, train: bool, max_length: int, stride: int) -> Rows:
    windows = qa.make_windows(
        tokenizer,
        [r["question"] for r in records],
        [r["context"] for r in records],
        max_length,
        stride,
    )
    targets = None
    if train:
        starts, ends = qa.window_labels(windows, [r["answers"] for r in records])
        targets = list(zip(starts, ends, strict=True))
    return Rows(
        windows.input_ids,
        windows.example_index,
        targets,
        windows=windows,
        token_types=windows.token_types,
    )


def _label_index(labels: Sequence[str], label: str) -> int:
    if label not in labels:
        raise ValueError(f"label {label!r} is not one of the task's labels {list(labels)}")
    return labels.index(label)


# ---- batches ------------------------------------------------------------------------------


@dataclass
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_types: torch.Tensor | None
    gate_set: torch.Tensor | None
    targets: torch.Tensor | None

    def logits(self, task_model: TaskModel) -> torch.Tensor:
        return task_model(self.input_ids, self.attention_mask, self.gate_set, self.token_types)


def _batch(rows: Rows, picked: Sequence[int], pad_id: int, gates, device) -> Batch:
    """Padded input_ids, attention mask, token types, gate indices and targets of rows `picked`
    (token types and targets where the rows have them)."""
    width = max(len(rows.input_ids[i]) for i in picked)
    ids = torch.full((len(picked), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(picked), width), dtype=torch.long)
    types = None if rows.token_types is None else torch.zeros_like(ids)
    for b, i in enumerate(picked):
        n = len(rows.input_ids[i])
        ids[b, :n] = torch.tensor(rows.input_ids[i])
        mask[b, :n] = 1
        if types is not None:
            types[b, :n] = torch.tensor(rows.token_types[i])
    return Batch(
        ids.to(device),
        mask.to(device),
        None if types is None else types.to(device),
        None if gates is None else gates[list(picked)].to(device),
        None if rows.targets is None else _targets(rows, picked, width).to(device),
    )


def _targets(rows: Rows, picked: Sequence[int], width: int) -> torch.Tensor:
    first = rows.targets[picked[0]]
    if not isinstance(first, list):  # pair class or QA (start, end)
        return torch.tensor([rows.targets[i] for i in picked])
    labels = torch.full((len(picked), width), IGNORE, dtype=torch.long)
    for b, i in enumerate(picked):
        labels[b, : len(rows.targets[i])] = torch.tensor(rows.targets[i])
    return labels


def _row_gates(model: MaskedLM, rows: Rows, records: Sequence[dict]):
    return gate_rows(model, [records[index]["lang"] for index in rows.record])


# ---- fine-tuning --------------------------------------------------------------------------


def finetune(
    model: MaskedLM,
    tokenizer,
    task: str,
    records: Sequence[dict],
    settings: FinetuneSettings,
    labels: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    log: Callable[[dict], None] | None = None,
    hook_for_steps: Callable[[int], Callable[[int], None]] | None = None,
) -> TaskModel:
    """Fine-tune `model` (in place) with a new head on `records` of `task`; the trained model.

    `task` is the training task (xnli, pawsx, udpos, panx, squad, tydiqa); `labels` default to
    the task's labels of docs/tasks.md. AdamW (`adamw.FusedAdamW`) with linear warm-up over the
    first `warmup_ratio` of the steps, then linear decay to zero; gradients clipped; data order,
    head initialisation and dropout follow `settings.seed`. `hook_for_steps(steps)`, given the
    number of training steps, returns what runs after each optimizer step with the step's
    number (e.g. a `gmp.MagnitudePruner`'s `step` on a schedule over those steps).
    """
    if not records:
        raise ValueError(f"no {task} training records")
    check_coverage(model, {r["lang"] for r in records}, f"{task} training data")
    kind = task_type(task)
    labels = labels if labels is not None else LABELS.get(task, ())
    task_model = TaskModel(model, task, kind, labels, settings.lengths, settings.seed).to(device)
    rows = make_rows(task_model, tokenizer, records, train=True)
    gates = _row_gates(model, rows, records)
    steps = settings.epochs * math.ceil(len(rows.input_ids) / settings.batch_size)
    optimizer = _optimizer(task_model, settings, steps)
    after_step = hook_for_steps(steps) if hook_for_steps else None
    torch.manual_seed(settings.seed)  # dropout
    order = torch.Generator().manual_seed(settings.seed)
    task_model.train()
    step, started = 0, time.perf_counter()
    lengths = [len(ids) for ids in rows.input_ids]
    for epoch in range(settings.epochs):
        for picked in length_batches(lengths, settings.batch_size, settings.length_pool, order):
            batch = _batch(rows, picked, model.cfg.pad_id, gates, device)
            loss = task_model.loss(batch.logits(task_model), batch.targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(task_model.parameters(), settings.grad_clip)
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            if after_step:
                after_step(step)
            if log and (step % settings.log_every == 0 or step == steps):
                elapsed = time.perf_counter() - started
                log({"step": step, "epoch": epoch, "loss": loss.item(), "seconds": elapsed})
    return task_model.eval()


def length_batches(
    lengths: Sequence[int], batch_size: int, pool: int, generator: torch.Generator
) -> list[list[int]]:
    """One epoch's batches of row indices, in random order: the rows, shuffled, are cut into
    pools of `pool` batches; each pool is sorted by length and cut into batches, so that a batch
    holds rows of similar length. As many batches as plain random batching makes."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    batches = []
    for first in range(0, len(order), batch_size * pool):
        rows = sorted(order[first : first + batch_size * pool], key=lambda i: -lengths[i])
        batches += [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    if pool <= 1:
        return batches
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def _optimizer(task_model: TaskModel, settings: FinetuneSettings, steps: int) -> FusedAdamW:
    warmup = round(settings.warmup_ratio * steps)
    return FusedAdamW(
        weight_groups(task_model, settings.weight_decay),
        lr=settings.lr,
        schedule=lambda step: lr_factor(step, warmup, steps),
        eps=settings.adam_eps,
    )


# ---- prediction ---------------------------------------------------------------------------


@torch.no_grad()
def predict(task_model: TaskModel, tokenizer, records: Sequence[dict], batch_size: int = 64):
    """One prediction per record: a label (pair), a tag per word (token), an answer (QA)."""
    model = task_model.encoder
    check_coverage(model, {r["lang"] for r in records}, f"{task_model.task} records")
    task_model.eval()
    rows = make_rows(task_model, tokenizer, records, train=False)
    logits = _row_logits(task_model, rows, _row_gates(model, rows, records), batch_size)
    if task_model.kind == "pair":
        return [task_model.labels[row.argmax().item()] for row in logits]
    if task_model.kind == "token":
        return word_tags(rows, logits, records, task_model.labels)
    starts, ends = zip(*(row.unbind(-1) for row in logits), strict=True)
    return qa.decode_best_spans(rows.windows, starts, ends, [r["context"] for r in records])


def _row_logits(task_model: TaskModel, rows: Rows, gates, batch_size: int) -> list:
    """Logits of every row (unpadded), batched by length to spare padding."""
    device = next(task_model.parameters()).device
    pad_id = task_model.encoder.cfg.pad_id
    by_length = sorted(range(len(rows.input_ids)), key=lambda i: len(rows.input_ids[i]))
    out = [None] * len(by_length)
    for first in range(0, len(by_length), batch_size):
        picked = by_length[first : first + batch_size]
        batch_logits = _batch(rows, picked, pad_id, gates, device).logits(task_model).float().cpu()
        for logits, i in zip(batch_logits, picked, strict=True):
            out[i] = logits if logits.dim() == 1 else logits[: len(rows.input_ids[i])]
    return out


def word_tags(rows: Rows, logits: list, records: Sequence[dict], labels: list[str]):
    """Each word's tag: the prediction at its first sub-token (UNTAGGED if it has none)."""
    tags = [[UNTAGGED] * len(r["tokens"]) for r in records]
    for index, words, row_logits in zip(rows.record, rows.word_ids, logits, strict=True):
        predicted = row_logits.argmax(-1).tolist()
        for t in first_subtokens(words):
            tags[index][words[t]] = labels[predicted[t]]
    return tags


# ---- scoring ------------------------------------------------------------------------------


def score(task: str, lang: str, records: Sequence[dict], predictions: Sequence) -> dict:
    """Metrics of `predictions` (as `predict` returns them) for records of one language.

    MLQA uses its official per-language normalisation; a language outside MLQA's seven (e.g.
    the demo world's) falls back to the SQuAD v1.1 normalisation.
    """
    kind = task_type(task)
    if kind == "pair":
        return {"accuracy": metrics.accuracy(predictions, [r["label"] for r in records])}
    if kind == "token":
        return {"f1": metrics.seqeval_f1(predictions, [r["tags"] for r in records])}
    answers = {r["id"]: r["answers"]["text"] for r in records}
    predicted = {r["id"]: text for r, text in zip(records, predictions, strict=True)}
    if task == "mlqa" and lang in MLQA_LANGS:
        return metrics.mlqa_scores(predicted, answers, lang)
    return metrics.squad_scores(predicted, answers)


def score_languages(
    task_model: TaskModel,
    tokenizer,
    task: str,
    records_by_lang: Mapping[str, Sequence[dict]],
    batch_size: int = 64,
) -> dict:
    """{lang: metrics, "avg": mean of each metric over the languages}."""
    if task_type(task) != task_model.kind:
        raise ValueError(f"a {task_model.kind} model cannot be scored on {task}")
    scores = {
        lang: score(task, lang, records, predict(task_model, tokenizer, records, batch_size))
        for lang, records in records_by_lang.items()
    }
    return {**scores, "avg": average(scores)}


def average(scores: Mapping[str, Mapping[str, float]]) -> dict:
    per_lang = list(scores.values())
    if not per_lang:
        return {}
    return {name: sum(s[name] for s in per_lang) / len(per_lang) for name in per_lang[0]}


def evaluate(
    task_model: TaskModel,
    tokenizer,
    validation: Mapping[str, Sequence[dict]],
    test: Mapping[str, Mapping[str, Sequence[dict]]],
    batch_size: int = 64,
) -> dict:
    """Scores on the training task's validation records and on each test task's records, e.g.
    a squad model on {"xquad": ..., "mlqa": ...}: {"validation": {lang: .., "avg": ..},
    "test": {task: {lang: .., "avg": ..}}}."""
    return {
        "validation": score_languages(
            task_model, tokenizer, task_model.task, validation, batch_size
        ),
        "test": {
            task: score_languages(task_model, tokenizer, task, by_lang, batch_size)
            for task, by_lang in test.items()
        },
    }
