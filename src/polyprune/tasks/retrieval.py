"""BUCC and Tatoeba without training: mean-pooled hidden states of one layer, cosine similarity.

As XTREME's retrieval scripts (layer 7 of 12 for base models, mean pooling over every attended
token, special tokens included). In the non-shared setting each side runs with its own
language's gates: the target side is the source language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from polyprune.model import MaskedLM
from polyprune.tasks import metrics
from polyprune.tasks.finetune import average, task_type
from polyprune.tasks.heads import check_coverage, gate_rows

BUCC_NEIGHBOURS = 4


@torch.no_grad()
def sentence_embeddings(
    model: MaskedLM,
    tokenizer,
    texts: Sequence[str],
    lang: str,
    layer: int,
    batch_size: int,
    max_length: int | None = None,
) -> torch.Tensor:
    """(n, d) mean-pooled states of `layer` (0: embeddings, i: layer i) for texts in `lang`."""
    model.eval()
    device = next(model.parameters()).device
    max_length = max_length or min(512, model.cfg.max_tokens)
    pooled = []
    for first in range(0, len(texts), batch_size):
        batch = list(texts[first : first + batch_size])
        encoded = tokenizer(batch, truncation=True, max_length=max_length, padding=True)
        mask = torch.tensor(encoded["attention_mask"], device=device)
        gates = gate_rows(model, [lang] * len(batch))
        states = model.encode(
            torch.tensor(encoded["input_ids"], device=device),
            mask,
            gate_set=None if gates is None else gates.to(device),
            all_layers=True,
            depth=layer,
        )
        pooled.append(metrics.mean_pool(states[layer], mask).float().cpu())
    return torch.cat(pooled)


def retrieval_scores(
    model: MaskedLM,
    tokenizer,
    task: str,
    records_by_lang: Mapping[str, Sequence[dict]],
    layer: int,
    batch_size: int,
    source_lang: str,
    max_length: int | None = None,
) -> dict:
    """{lang: metrics, "avg": ...} for bucc (precision, recall, f1, threshold) or tatoeba
    (accuracy).

    BUCC mines each language against the source language (ratio margin over 4 neighbours) and
    picks the threshold that maximises F1 on the records' own gold pairs.
    """
    if not 0 <= layer <= model.cfg.layers:
        raise ValueError(f"layer {layer}: the model has 0 (embeddings) to {model.cfg.layers}")
    check_coverage(model, [*records_by_lang, source_lang], f"{task} records")
    kind = task_type(task)
    if kind not in ("mining", "retrieval"):
        raise ValueError(f"{task} is not a retrieval task")

    def embed(texts, lang):
        return sentence_embeddings(model, tokenizer, texts, lang, layer, batch_size, max_length)

    score = _bucc_scores if kind == "mining" else _tatoeba_scores
    scores = {
        lang: score(records, lang, source_lang, embed) for lang, records in records_by_lang.items()
    }
    averaged = average(scores)
    averaged.pop("threshold", None)  # a threshold per language, not comparable across them
    return {**scores, "avg": averaged}


def _tatoeba_scores(records, lang, source_lang, embed) -> dict:
    source = embed([r["source"] for r in records], lang)
    target = embed([r["target"] for r in records], source_lang)
    return {"accuracy": metrics.tatoeba_accuracy(source, target)}


def _bucc_scores(records, lang, source_lang, embed) -> dict:
    sources = [r for r in records if r["side"] == "source"]
    targets = [r for r in records if r["side"] == "target"]
    pairs = metrics.mine_pairs(
        embed([r["text"] for r in sources], lang),
        embed([r["text"] for r in targets], source_lang),
        k=BUCC_NEIGHBOURS,
    )
    candidates = [(sources[i]["id"], targets[j]["id"], s) for i, j, s in pairs]
    gold = {(r["id"], r["gold"]) for r in sources if r["gold"] is not None}
    gold |= {(r["gold"], r["id"]) for r in targets if r["gold"] is not None}
    return metrics.bucc_f1(candidates, gold)
