"""Extractive QA over a fast tokenizer: overlapping context windows, training labels, decoding.

A window is `<s> question </s></s> context part </s>` (XLM-R's pair template); a long context
is split into windows that overlap by `stride` tokens. Labels and decoded spans work on token
character offsets into the context, as Hugging Face's SQuAD examples do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

# Label of a window that does not hold the whole answer: the <s> token.
NO_ANSWER = 0


@dataclass
class QAWindows:
    """Tokenized windows (unpadded) and, per window, its example and context offsets.

    `context_offsets[w][t]` is the (start, end) character span in the example's context of
    token t of window w, or None where t is not a context token (question, special tokens).
    """

    input_ids: list[list[int]]
    attention_mask: list[list[int]]
    example_index: list[int]
    context_offsets: list[list[tuple[int, int] | None]]
    token_types: list[list[int]] | None = None  # where the tokenizer gives them (BERT)

    def __len__(self) -> int:
        return len(self.input_ids)


def make_windows(
    tokenizer, questions: Sequence[str], contexts: Sequence[str], max_length: int, stride: int
) -> QAWindows:
    """Windows of at most `max_length` tokens over each (question, context) pair."""
    # Leading whitespace would only take room from the context.
    questions = [question.lstrip() for question in questions]
    _check_room(tokenizer, questions, max_length, stride)
    encoded = tokenizer(
        questions,
        list(contexts),
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    context_offsets = [
        [
            tuple(span) if sequence == 1 else None
            for span, sequence in zip(offsets, encoded.sequence_ids(w), strict=True)
        ]
        for w, offsets in enumerate(encoded["offset_mapping"])
    ]
    return QAWindows(
        input_ids=encoded["input_ids"],
        attention_mask=encoded["attention_mask"],
        example_index=list(encoded["overflow_to_sample_mapping"]),
        context_offsets=context_offsets,
        token_types=encoded.get("token_type_ids"),
    )


def _check_room(tokenizer, questions: list[str], max_length: int, stride: int) -> None:
    """Fail clearly where the tokenizer would panic: the context part must exceed the stride."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    question_ids = tokenizer(questions, add_special_tokens=False)["input_ids"]
    for index, ids in enumerate(question_ids):
        room = max_length - specials - len(ids)
        if room <= stride:
            raise ValueError(
                f"question {index} leaves {room} context tokens per window, not more than the"
                f" stride {stride}; raise max_length or lower the stride"
            )


def window_labels(
    windows: QAWindows, answers: Sequence[Mapping[str, list]]
) -> tuple[list[int], list[int]]:
    """Start and end token of each window's answer (the first of its example's answers).

    `answers[i]` is example i's {"text": [...], "answer_start": [...]}. A window that does not
    hold the whole answer is labelled NO_ANSWER (the <s> token) at both ends.
    """
    starts, ends = [], []
    for example, offsets in zip(windows.example_index, windows.context_offsets, strict=True):
        answer = answers[example]
        start_char = answer["answer_start"][0]
        start, end = _answer_tokens(offsets, start_char, start_char + len(answer["text"][0]))
        starts.append(start)
        ends.append(end)
    return starts, ends


def _answer_tokens(
    offsets: list[tuple[int, int] | None], start_char: int, end_char: int
) -> tuple[int, int]:
    context = [t for t, span in enumerate(offsets) if span is not None]
    if not context or offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return NO_ANSWER, NO_ANSWER
    start = max(t for t in context if offsets[t][0] <= start_char)
    end = min(t for t in context if offsets[t][1] >= end_char)
    return start, end


def decode_best_spans(
    windows: QAWindows,
    start_logits,
    end_logits,
    contexts: Sequence[str],
    n_best: int = 20,
    max_answer_tokens: int = 30,
) -> list[str]:
    """The best answer text of every example over all of its windows.

    `start_logits[w]` and `end_logits[w]` score the tokens of window w (padding may follow).
    Per window, the `n_best` top starts and ends form candidate spans: both ends in the
    context, start <= end, at most `max_answer_tokens` tokens; a span scores start + end logit.
    An example without any valid span gets "".
    """
    best: dict[int, tuple[float, str]] = {}
    for w, (example, offsets) in enumerate(
        zip(windows.example_index, windows.context_offsets, strict=True)
    ):
        span = _best_window_span(offsets, start_logits[w], end_logits[w], n_best, max_answer_tokens)
        if span is not None and (example not in best or span[0] > best[example][0]):
            score, first, last = span
            best[example] = (score, contexts[example][offsets[first][0] : offsets[last][1]])
    return [best[example][1] if example in best else "" for example in range(len(contexts))]


def _best_window_span(
    offsets: list[tuple[int, int] | None], start_logits, end_logits, n_best: int, max_tokens: int
) -> tuple[float, int, int] | None:
    start_scores = _window_scores(start_logits, len(offsets))
    end_scores = _window_scores(end_logits, len(offsets))
    spans = (
        (start_scores[first] + end_scores[last], first, last)
        for first in _top_indices(start_scores, n_best)
        for last in _top_indices(end_scores, n_best)
        if offsets[first] is not None
        and offsets[last] is not None
        and first <= last < first + max_tokens
    )
    return max(spans, key=lambda span: span[0], default=None)


def _window_scores(logits, length: int) -> list[float]:
    return torch.as_tensor(logits, dtype=torch.float32)[:length].tolist()


def _top_indices(scores: list[float], n: int) -> list[int]:
    return sorted(range(len(scores)), key=lambda t: -scores[t])[:n]
