"""XTREME's evaluation metrics, as the benchmark's own scripts define them; scores on 0-100.

- accuracy: XNLI, PAWS-X
- seqeval_f1: PAN-X and UD-POS (seqeval 1.2.2's default, conlleval-compatible mode)
- squad_scores: XQuAD, TyDiQA-GoldP (SQuAD v1.1 evaluate script)
- mlqa_scores: MLQA (mlqa_evaluation_v1.py)
- mine_pairs + bucc_f1: BUCC 2018 (XTREME's utils_retrieve.py: mine_bitext, bucc_eval)
- tatoeba_accuracy: Tatoeba (XTREME's run_retrieval.py)
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# Classification


def accuracy(predictions: Sequence, references: Sequence) -> float:
    """Percentage of predictions equal to their reference."""
    _check_same_length(predictions, references)
    if not references:
        raise ValueError("accuracy of an empty set is undefined")
    n_correct = sum(p == r for p, r in zip(predictions, references, strict=True))
    return 100.0 * n_correct / len(references)


def _check_same_length(predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")


# ---------------------------------------------------------------------------------------------
# Sequence labelling: seqeval 1.2.2, default mode


def seqeval_f1(predictions: list[list[str]], references: list[list[str]]) -> float:
    """Entity-level micro F1 of seqeval 1.2.2's default (conlleval-compatible) mode.

    A tag's first character is its chunk tag and the rest (after a '-', if any) its type, so
    tags without a B-/I- prefix (UD POS, as XTREME scores them) become chunks too: "NOUN" is
    chunk tag "N" of type "OUN", and consecutive equal POS tags merge into one chunk.
    """
    _check_same_length(predictions, references)
    for predicted, gold in zip(predictions, references, strict=True):
        _check_same_length(predicted, gold)
    predicted_chunks, gold_chunks = _chunks(predictions), _chunks(references)
    return 100.0 * _f1(len(predicted_chunks & gold_chunks), len(predicted_chunks), len(gold_chunks))


def _chunks(sequences: list[list[str]]) -> set[tuple[str, int, int]]:
    """(type, first, last) of every chunk; sentences are joined with an "O" between them."""
    tags = [tag for sequence in sequences for tag in [*sequence, "O"]]
    chunks = set()
    prev_tag, prev_type, begin = "O", "", 0
    for position, label in enumerate([*tags, "O"]):
        tag, type_ = label[0], label[1:].split("-", maxsplit=1)[-1] or "_"
        if _chunk_ends(prev_tag, tag, prev_type, type_):
            chunks.add((prev_type, begin, position - 1))
        if _chunk_starts(prev_tag, tag, prev_type, type_):
            begin = position
        prev_tag, prev_type = tag, type_
    return chunks


def _chunk_ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    return (
        prev_tag in ("E", "S")
        or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
        or (prev_tag not in ("O", ".") and prev_type != type_)
    )


def _chunk_starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    return (
        tag in ("B", "S")
        or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
        or (tag not in ("O", ".") and prev_type != type_)
    )


def _f1(n_correct: int, n_predicted: int, n_gold: int) -> float:
    """F1 on 0-1; 0 where precision or recall is undefined (seqeval's zero_division)."""
    if n_correct == 0:
        return 0.0
    precision, recall = n_correct / n_predicted, n_correct / n_gold
    return 2 * precision * recall / (precision + recall)


# ---------------------------------------------------------------------------------------------
# Extractive QA: SQuAD v1.1 and MLQA


def squad_scores(predictions: Mapping[str, str], references: Mapping[str, list[str]]) -> dict:
    """Exact match and F1 of the SQuAD v1.1 evaluation script, over every reference question.

    A question without a prediction scores 0 (as the script's "Unanswered question").
    """
    return _qa_scores(predictions, references, _squad_tokens)


def mlqa_scores(
    predictions: Mapping[str, str], references: Mapping[str, list[str]], lang: str
) -> dict:
    """Exact match and F1 of the official MLQA script for answers in `lang`.

    `lang` is the context (answer) language: en, es, de, vi, ar, hi or zh.
    """
    if lang not in _MLQA_ARTICLES:
        raise ValueError(f"MLQA defines no normalisation for language {lang!r}")
    return _qa_scores(predictions, references, lambda text: _mlqa_tokens(text, lang))


def _qa_scores(
    predictions: Mapping[str, str],
    references: Mapping[str, list[str]],
    tokens: Callable[[str], list[str]],
) -> dict:
    if not references:
        raise ValueError("no reference questions to score")
    exact_match = f1 = 0.0
    for question_id, answers in references.items():
        if question_id not in predictions:
            continue
        predicted = tokens(predictions[question_id])
        exact_match += max(predicted == tokens(answer) for answer in answers)
        f1 += max(_token_f1(predicted, tokens(answer)) for answer in answers)
    return {
        "exact_match": 100.0 * exact_match / len(references),
        "f1": 100.0 * f1 / len(references),
    }


def _token_f1(predicted: list[str], gold: list[str]) -> float:
    n_common = sum((Counter(predicted) & Counter(gold)).values())
    return _f1(n_common, len(predicted), len(gold))


def _squad_tokens(text: str) -> list[str]:
    """SQuAD's normalize_answer, split: lower, drop ASCII punctuation, articles, whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return re.sub(r"\b(a|an|the)\b", " ", text).split()


# The MLQA script's article patterns; None: the language has no articles to remove.
_MLQA_ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    # The script's pattern '\sال^|ال' only ever matches its second branch: every "ال", anywhere.
    "ar": r"ال",
    "hi": None,
    "zh": None,
}
_CJK = re.compile(r"[\u4e00-\u9fa5]")


def _mlqa_tokens(text: str, lang: str) -> list[str]:
    """MLQA's normalize_answer, split: lower, drop Unicode punctuation and the language's
    articles, then whitespace tokens, with every CJK character its own token for zh."""
    text = "".join(ch for ch in text.lower() if not _is_punctuation(ch))
    if _MLQA_ARTICLES[lang]:
        text = re.sub(_MLQA_ARTICLES[lang], " ", text)
    if lang == "zh":
        text = _CJK.sub(lambda match: f" {match.group()} ", text)
    return text.split()


def _is_punctuation(ch: str) -> bool:
    return ch in string.punctuation or unicodedata.category(ch).startswith("P")


# ---------------------------------------------------------------------------------------------
# Retrieval: BUCC mining and Tatoeba


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the hidden states [B, T, D] over the attended positions -> [B, D]."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def mine_pairs(source_emb, target_emb, k: int = 4) -> list[tuple[int, int, float]]:
    """Candidate pairs (source row, target row, score), best first, as XTREME mines BUCC.

    The score is the ratio margin (Artetxe & Schwenk 2019) over the k nearest neighbours by
    cosine similarity. As XTREME's mine_bitext (retrieval="max"): the best candidate of every
    source sentence (forward) and of every target sentence (backward) are pooled, then taken
    greedily by score so that each sentence appears in at most one pair; pairs scoring <= 0
    are dropped. Embeddings are [n, D] tensors or arrays; deduplicating identical sentences
    (XTREME's "unify") is the caller's choice.
    """
    source, target = _unit_rows(source_emb), _unit_rows(target_emb)
    fwd_sim, fwd_ind = _top_k_cosine(source, target, min(k, len(target)))
    bwd_sim, bwd_ind = _top_k_cosine(target, source, min(k, len(source)))
    fwd_mean, bwd_mean = fwd_sim.mean(dim=1), bwd_sim.mean(dim=1)
    fwd_score, fwd_best = _best_by_margin(fwd_sim, fwd_ind, fwd_mean, bwd_mean)
    bwd_score, bwd_best = _best_by_margin(bwd_sim, bwd_ind, bwd_mean, fwd_mean)
    candidates = [(i, j, s) for i, (j, s) in enumerate(zip(fwd_best, fwd_score, strict=True))]
    candidates += [(i, j, s) for j, (i, s) in enumerate(zip(bwd_best, bwd_score, strict=True))]
    return _one_to_one(sorted(candidates, key=lambda candidate: -candidate[2]))


def _unit_rows(embeddings) -> torch.Tensor:
    return F.normalize(torch.as_tensor(embeddings).detach().float(), dim=1)


def _top_k_cosine(queries: torch.Tensor, keys: torch.Tensor, k: int):
    """Similarities and indices of each query's k nearest keys, in query blocks of ~256 MB."""
    block = max(1, 2**26 // max(1, len(keys)))
    results = [(part @ keys.T).topk(k, dim=1) for part in queries.split(block)]
    return torch.cat([r.values for r in results]), torch.cat([r.indices for r in results])


def _best_by_margin(sim, ind, query_mean, key_mean) -> tuple[list[float], list[int]]:
    """Per query: the neighbour with the best ratio margin cos / mean(query knn, key knn)."""
    margin = sim / ((query_mean[:, None] + key_mean[ind]) / 2)
    score, column = margin.max(dim=1)
    return score.tolist(), ind.gather(1, column[:, None]).squeeze(1).tolist()


def _one_to_one(candidates: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    seen_source, seen_target, pairs = set(), set(), []
    for source, target, score in candidates:
        if source in seen_source or target in seen_target:
            continue
        seen_source.add(source)
        seen_target.add(target)
        if score > 0:
            pairs.append((source, target, score))
    return pairs


def bucc_f1(
    candidates_with_scores: Iterable[tuple[Hashable, Hashable, float]],
    gold_pairs: Iterable[tuple[Hashable, Hashable]],
) -> dict:
    """Precision, recall and F1 (0-100) of the candidates scoring at least the threshold that
    maximises F1 on the gold pairs, and that threshold (XTREME's bucc_optimize + bucc_eval).

    Candidates are (source, target, score), e.g. mine_pairs' output mapped to sentence ids; a
    pair listed twice keeps its best score. The threshold lies halfway between the last score
    kept and the next one (the last score itself when every candidate is kept); 0 when no
    candidate is gold.
    """
    scores: dict[tuple, float] = {}
    for source, target, score in candidates_with_scores:
        scores[(source, target)] = max(score, scores.get((source, target), score))
    gold = {tuple(pair) for pair in gold_pairs}
    threshold = _best_threshold(sorted(scores.items(), key=lambda item: -item[1]), gold)
    extracted = {pair for pair, score in scores.items() if score >= threshold}
    n_correct = len(extracted & gold)
    return {
        "precision": 100.0 * n_correct / len(extracted) if n_correct else 0.0,
        "recall": 100.0 * n_correct / len(gold) if n_correct else 0.0,
        "f1": 100.0 * _f1(n_correct, len(extracted), len(gold)),
        "threshold": threshold,
    }


def _best_threshold(ranked: list[tuple[tuple, float]], gold: set) -> float:
    best_f1, threshold, n_correct = 0.0, 0.0, 0
    for rank, (pair, score) in enumerate(ranked):
        n_correct += pair in gold
        next_score = ranked[rank + 1][1] if rank + 1 < len(ranked) else None
        # Cut only between distinct scores: a threshold cannot split tied candidates.
        if next_score == score:
            continue
        f1 = _f1(n_correct, rank + 1, len(gold))
        if f1 > best_f1:
            best_f1 = f1
            threshold = score if next_score is None else (score + next_score) / 2
    return threshold


def tatoeba_accuracy(source_emb, target_emb) -> float:
    """Top-1 retrieval accuracy (0-100): row i of source and row i of target are translations.

    As XTREME's run_retrieval.py, each target sentence (the English side) queries the source
    sentences, by cosine similarity.
    """
    source, target = _unit_rows(source_emb), _unit_rows(target_emb)
    if len(source) != len(target):
        raise ValueError(f"{len(source)} source rows for {len(target)} target rows")
    _, nearest = _top_k_cosine(target, source, 1)
    hits = nearest[:, 0] == torch.arange(len(target), device=nearest.device)
    return 100.0 * hits.float().mean().item()
