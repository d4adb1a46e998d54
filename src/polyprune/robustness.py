"""The second study's robustness lens: perturbed NER test sets, and the examples on which sparse
and dense models disagree (pruning-identified exemplars, Hooker et al. 2019).

Every perturbation maps NER records ({"tokens", "tags", "lang", ...}) to records with valid BIO
tags, one per token; the random ones draw from a generator seeded by (seed, language), so that a
language's test set comes out the same for the same seed whatever other languages the run holds:

- `char_noise`: each character of each token, with probability `rate`, is deleted, replaced, or
  swapped with the next one, or a character is inserted after it (one of the four, uniformly);
  new characters come from the language's own test characters, so the script stays. A token
  never becomes empty.
- `unseen_entities`: every entity span is replaced by a span of the same type that the training
  data never tags, so the tags stay valid BIO. The names come from a pool of the language's
  records (e.g. all its splits), other than the name replaced where there is another; where none
  of a type is unseen (a small world that reuses its names), the pool's names with each token's
  letters after the first shuffled.
- `casing`: every token upper-cased, lower-cased or title-cased (scripts without case keep theirs).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

import numpy as np

PERTURBATIONS = ("char_noise", "unseen_entities", "casing")
CASINGS = ("upper", "lower", "title")


def rng_for(seed: int, lang: str) -> np.random.Generator:
    lang_key = int.from_bytes(hashlib.sha256(lang.encode()).digest()[:8], "big")
    return np.random.default_rng([seed, lang_key])


def char_noise(records: Sequence[dict], rate: float, seed: int) -> list[dict]:
    if not 0 <= rate <= 1:
        raise ValueError(f"character noise rate {rate} is outside [0, 1]")
    alphabets: dict[str, set[str]] = {}
    for r in records:
        alphabets.setdefault(r["lang"], set()).update(c for token in r["tokens"] for c in token)
    rngs, out = {}, []
    for r in records:
        lang = r["lang"]
        rng = rngs.setdefault(lang, rng_for(seed, lang))
        alphabet = sorted(alphabets[lang])
        out.append({**r, "tokens": [_noisy(t, rate, alphabet, rng) for t in r["tokens"]]})
    return out


def _noisy(token: str, rate: float, alphabet: list[str], rng: np.random.Generator) -> str:
    chars, i = list(token), 0
    while i < len(chars):
        if rng.random() >= rate:
            i += 1
            continue
        edit = rng.integers(4)
        if edit == 0 and len(chars) > 1:  # delete
            del chars[i]
            continue
        if edit == 1:  # replace
            chars[i] = alphabet[rng.integers(len(alphabet))]
        elif edit == 2 and i + 1 < len(chars):  # swap with the next
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
            i += 1
        elif edit == 3:  # insert after
            chars.insert(i + 1, alphabet[rng.integers(len(alphabet))])
            i += 1
        i += 1
    return "".join(chars)


def entity_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """(first, end, type) of each BIO entity; an I- tag without its B- opens a span, as seqeval
    reads it."""
    spans, first, kind = [], None, None
    for i, tag in enumerate([*tags, "O"]):
        tag_kind = None if tag == "O" else tag[2:]
        if first is not None and not (tag.startswith("I-") and tag_kind == kind):
            spans.append((first, i, kind))
            first = None
        if tag_kind is not None and first is None:
            first, kind = i, tag_kind
    return spans


def entity_names(records: Sequence[dict]) -> set[tuple[str, ...]]:
    """The token sequences that `records` tag as entities."""
    return {name for r in records for name in _entities(r)}


def unseen_entities(
    records: Sequence[dict], seen: set[tuple[str, ...]], pool: Sequence[dict], seed: int
) -> list[dict]:
    """`records` with each entity replaced by one of `pool`'s entities of the same type and
    language whose name is not in `seen` (e.g. `entity_names` of the training data)."""
    names: dict[tuple[str, str], set[tuple[str, ...]]] = {}
    for r in pool:
        for (_, _, kind), name in zip(entity_spans(r["tags"]), _entities(r), strict=True):
            names.setdefault((r["lang"], kind), set()).add(name)
    candidates = {}
    for (lang, kind), found in sorted(names.items()):
        unseen = sorted(found - seen)
        if not unseen:
            rng = rng_for(seed, f"{lang}/{kind}")
            unseen = sorted(
                {n for n in (_scrambled(n, rng) for n in sorted(found)) if n not in seen}
            )
        candidates[lang, kind] = unseen
    rngs, out = {}, []
    for r in records:
        lang = r["lang"]
        rng = rngs.setdefault(lang, rng_for(seed, lang))
        tokens, tags, last = [], [], 0
        for first, end, kind in entity_spans(r["tags"]):
            names = candidates.get((lang, kind))
            if not names:
                raise ValueError(f"no unseen {kind} entity in {lang} to replace with")
            options = [n for n in names if n != tuple(r["tokens"][first:end])] or names
            name = options[rng.integers(len(options))]
            tokens += [*r["tokens"][last:first], *name]
            tags += [*r["tags"][last:first], f"B-{kind}", *[f"I-{kind}"] * (len(name) - 1)]
            last = end
        out.append({**r, "tokens": tokens + r["tokens"][last:], "tags": tags + r["tags"][last:]})
    return out


def _scrambled(name: tuple[str, ...], rng: np.random.Generator) -> tuple[str, ...]:
    return tuple(t[:1] + "".join(rng.permutation(list(t[1:]))) for t in name)


def _entities(record: dict) -> list[tuple[str, ...]]:
    return [tuple(record["tokens"][a:b]) for a, b, _ in entity_spans(record["tags"])]


def casing(records: Sequence[dict], how: str) -> list[dict]:
    if how not in CASINGS:
        raise ValueError(f"casing {how!r}; expected one of {CASINGS}")
    change = {"upper": str.upper, "lower": str.lower, "title": str.title}[how]
    return [{**r, "tokens": [change(t) for t in r["tokens"]]} for r in records]


# ---- pruning-identified exemplars ---------------------------------------------------------


def modal(predictions: Sequence[Sequence]) -> list:
    """Per example, the most frequent prediction across models (ties: the first model's)."""
    out = []
    for per_model in zip(*predictions, strict=True):
        keys = [tuple(p) if isinstance(p, list) else p for p in per_model]
        counts = Counter(keys)
        best = max(counts.values())
        out.append(next(k for k in keys if counts[k] == best))
    return out


def exemplars(dense: Sequence[Sequence], sparse: Sequence[Sequence]) -> list[int]:
    """Indices of the pruning-identified exemplars: the examples whose modal prediction over the
    sparse models (e.g. the seeds) differs from the modal prediction over the dense models."""
    return [i for i, (d, s) in enumerate(zip(modal(dense), modal(sparse), strict=True)) if d != s]
