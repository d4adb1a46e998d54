"""The nine tasks of the demo world as records in the normalised schemas of docs/tasks.md.

Parallel data (translations) come from one list of meanings per (task, split), realised in each
language; per-language data (udpos, panx, tydiqa evaluation, bucc, tatoeba) draw their own
meanings. Every random stream is keyed by (seed, task, split[, language]).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from polyprune.tasks.spec import LABELS

from .concepts import VERBS, fits
from .meaning import (
    NP,
    Clause,
    Sampler,
    Sentence,
    anchors,
    contradictions,
    counted_role,
    other_patient,
    stronger,
    swapped_adjectives,
    swapped_agents,
    swapped_roles,
    weaker,
    weighted_sample,
)
from .realise import Style, Token, random_style, render

SPLITS = {
    "xnli": ("train", "validation", "test"),
    "pawsx": ("train", "validation", "test"),
    "udpos": ("train", "validation", "test"),
    "panx": ("train", "validation", "test"),
    "squad": ("train", "validation"),
    "xquad": ("test",),
    "mlqa": ("validation", "test"),
    "tydiqa": ("train", "validation", "test"),
    "bucc": ("test",),
    "tatoeba": ("test",),
}
# Tasks without data in the source language: it is the other side of every pair.
PAIRED_WITH_SOURCE = ("bucc", "tatoeba")
PARAPHRASE_SHARE = 0.45
ANCHOR_WEIGHT = 3
SAME_WORDING = 0.7  # share of pairs whose second sentence keeps the first one's word choices
BUCC_GOLD_SHARE = 0.4  # share of each side's sentences that have a translation on the other


# -- sentence pairs ----------------------------------------------------------------------------


def nli_items(sampler: Sampler, n: int) -> list[tuple[Clause, Clause, str]]:
    """Premise, hypothesis, label; labels balanced. Under negation, saying less is no longer
    entailed (Mara did not buy a red car / a car), so the operations swap sides there."""
    labels = [LABELS["xnli"][i % 3] for i in range(n)]
    sampler.rng.shuffle(labels)
    items = []
    for label in labels:
        options = []
        while not options:
            premise = sampler.clause(modifiers=0.4)
            negated = premise.negated
            if label == "entailment":
                options = stronger(premise, sampler, False) if negated else weaker(premise)
            elif label == "neutral":
                options = weaker(premise, False) if negated else stronger(premise, sampler)
                options += other_patient(premise, sampler)
            else:
                options = contradictions(premise, sampler)
        items.append((premise, _pick_change(sampler.rng, premise, options), label))
    return items


def paws_items(sampler: Sampler, n: int) -> list[tuple[Sentence, Sentence, str]]:
    """Sentence pairs with high word overlap: the same meaning said another way (paraphrase),
    or the same words in other roles, or one detail changed (different)."""
    rng = sampler.rng
    items = []
    while len(items) < n:
        sentence = _paws_sentence(sampler)
        first, *rest = sentence.clauses
        if rng.random() < PARAPHRASE_SHARE:
            reordered = rest and rng.random() < 0.5  # "A and B" says what "B and A" says
            other = Sentence((*rest, first), sentence.links) if reordered else sentence
            items.append((sentence, other, "paraphrase"))
            continue
        swaps = _swaps(sentence)
        if swaps and rng.random() < 0.5:
            different = rng.choice(swaps)
        else:
            changes = contradictions(first, sampler) + other_patient(first, sampler)
            different = Sentence((_pick_change(rng, first, changes), *rest), sentence.links)
        items.append((sentence, different, "different"))
    return items


def _swaps(sentence: Sentence) -> list[Sentence]:
    """The same words in other roles: two clauses' agents, or a clause's agent and patient or
    their adjectives, exchanged."""
    first, *rest = sentence.clauses
    if rest:
        return [Sentence(pair, sentence.links) for pair in swapped_agents(first, rest[0])]
    return [Sentence((c,)) for c in swapped_roles(first) + swapped_adjectives(first)]


def _pick_change(rng, original: Clause, options: list[Clause]) -> Clause:
    """One of the changed clauses; those that change a name or a number weigh more, so that
    part of each label rests on words shared across languages (as numbers and names do)."""
    weights = [ANCHOR_WEIGHT if anchors(o) != anchors(original) else 1 for o in options]
    return rng.choices(options, weights)[0]


def _paws_sentence(sampler: Sampler) -> Sentence:
    """One clause whose roles can be exchanged, or two joined by "and"; always with an adjunct
    that a paraphrase can move."""
    rng = sampler.rng
    if rng.random() < 0.4:
        first, second = sampler.clause(0.3), sampler.clause(0.2)
        sentence = Sentence((first, second), ("AND",))
    else:
        swappable = [v for v, (a, p) in VERBS.items() if p and any(fits(k, p) for k in a.split())]
        first = sampler.clause(0.5, rng.choice(swappable))
        sentence = Sentence((first,))
    if first.time is None and first.location is None:
        first = replace(first, time=sampler.time(first.tense))
    return Sentence((first, *sentence.clauses[1:]), sentence.links)


def pair_records(world, task: str, split: str, lang: str) -> list[dict]:
    make = nli_items if task == "xnli" else paws_items
    items = world.parallel_meanings(task, split, make)
    rng = world.rng(task, split, lang)
    realiser = world.realiser(lang)
    records = []
    for i, (first, second, label) in enumerate(items):
        first = first if isinstance(first, Sentence) else Sentence((first,))
        second = second if isinstance(second, Sentence) else Sentence((second,))
        style = random_style(rng, first)
        other_style = style if rng.random() < SAME_WORDING else random_style(rng, second)
        if label == "paraphrase":
            other_style = _moved_adjunct(rng, second, style, other_style)
        records.append(
            {
                "id": f"{task}-{split}-{i:05d}-{lang}",
                "lang": lang,
                "sentence1": render(realiser.sentence(first, style))[0],
                "sentence2": render(realiser.sentence(second, other_style))[0],
                "label": label,
            }
        )
    return records


def _moved_adjunct(rng, sentence: Sentence, style: Style, other: Style) -> Style:
    """`other` with an adjunct placement different from `style`'s, so the words differ."""
    present = sorted(
        {slot for slot in ("time", "location") for c in sentence.clauses if getattr(c, slot)}
    )
    fronts = [front for front in (None, *present) if front != style.front]
    return replace(other, front=rng.choice(fronts))


# -- token tagging -----------------------------------------------------------------------------


def token_records(world, task: str, split: str, lang: str) -> list[dict]:
    """Annotated sentences of one language (not translations); panx keeps those with names."""
    rng = world.rng(task, split, lang)
    sampler = Sampler(world.entities, rng)
    realiser = world.realiser(lang)
    records = []
    while len(records) < world.size(task, split):
        sentence = sampler.sentence()
        tokens = realiser.sentence(sentence, random_style(rng, sentence))
        if task == "panx" and all(token.ner == "O" for token in tokens):
            continue
        tags = [token.upos if task == "udpos" else token.ner for token in tokens]
        records.append(
            {
                "id": f"{task}-{split}-{lang}-{len(records):05d}",
                "lang": lang,
                "tokens": [token.text for token in tokens],
                "tags": tags,
            }
        )
    return records


# -- question answering ------------------------------------------------------------------------


@dataclass(frozen=True)
class QAShape:
    sentences: tuple[int, int]  # per context, inclusive range
    questions: tuple[int, int]  # per context
    roles: dict[str, int]  # question types and their weights
    question_synonyms: float = 0.3  # tydiqa: questions written apart from the passage


_WHO_WHAT = {"agent": 3, "patient": 3, "location": 2, "time": 1, "count": 1}
_WHERE_WHEN = {"agent": 1, "patient": 1, "location": 3, "time": 2, "count": 2}
QA_SHAPES = {
    "squad": QAShape((3, 6), (1, 3), _WHO_WHAT),
    "xquad": QAShape((3, 6), (1, 3), _WHO_WHAT),
    "mlqa": QAShape((5, 8), (1, 3), _WHERE_WHEN),
    "tydiqa": QAShape((2, 3), (1, 1), dict.fromkeys(_WHO_WHAT, 1), question_synonyms=0.8),
}


@dataclass(frozen=True)
class QAItem:
    clauses: tuple[Clause, ...]  # the context, one clause a sentence
    questions: tuple[tuple[int, str, Clause], ...]  # (sentence, role asked, question's clause)


def qa_items(shape: QAShape) -> Callable[[Sampler, int], list[QAItem]]:
    def make(sampler: Sampler, n: int) -> list[QAItem]:
        rng = sampler.rng
        items, count = [], 0
        while count < n:
            topic, clauses = sampler.document(rng.randint(*shape.sentences))
            candidates = [(i, role) for i, c in enumerate(clauses) for role in _askable(c)]
            if not candidates:
                continue
            k = min(rng.randint(*shape.questions), len(candidates), n - count)
            weights = [shape.roles[role] for _, role in candidates]
            chosen = weighted_sample(rng, candidates, weights, k)
            questions = tuple(
                (i, role, _question_clause(rng, clauses[i], role, topic)) for i, role in chosen
            )
            items.append(QAItem(tuple(clauses), questions))
            count += k
        return items

    return make


def _askable(clause: Clause) -> list[str]:
    roles = []
    if not clause.agent.is_pronoun:
        roles.append("agent")
    if clause.patient is not None:
        roles.append("patient")
    if clause.location is not None:
        roles.append("location")
    if isinstance(clause.time, int):
        roles.append("time")
    if clause.agent.count or (clause.patient and clause.patient.count):
        roles.append("count")
    return roles


def _question_clause(rng, clause: Clause, role: str, topic: NP) -> Clause:
    """The clause as a question states it: the topic named, some other adjuncts left out."""
    if clause.agent.is_pronoun:
        clause = replace(clause, agent=topic)
    adjuncts = [slot for slot in ("location", "time", "manner") if slot != role]
    return replace(clause, **{slot: None for slot in adjuncts if rng.random() < 0.5})


def qa_records(world, task: str, split: str, lang: str) -> list[dict]:
    shape = QA_SHAPES[task]
    if task == "tydiqa" and split != "train":
        items = qa_items(shape)(world.sampler(task, split, lang), world.size(task, split))
    else:
        items = world.parallel_meanings(task, split, qa_items(shape))
    rng = world.rng(task, split, lang)
    realiser = world.realiser(lang)
    records = []
    for item in items:
        sentences = []
        for clause in item.clauses:
            sentence = Sentence((clause,))
            sentences.append(realiser.sentence(sentence, random_style(rng, sentence)))
        context, sentence_starts = _join(sentences)
        for i, role, question in item.questions:
            style = Style(synonym_rate=shape.question_synonyms, synonym_key=rng.getrandbits(32))
            answer, offset = _answer(sentences[i], role, item.clauses[i])
            start = sentence_starts[i] + offset
            records.append(
                {
                    "id": f"{task}-{split}-{len(records):05d}-{lang}",
                    "lang": lang,
                    "context": context,
                    "question": render(realiser.question(question, role, style))[0],
                    "answers": {"text": [answer], "answer_start": [start]},
                }
            )
    return records


def _join(sentences: list[list[Token]]) -> tuple[str, list[int]]:
    texts = [render(tokens)[0] for tokens in sentences]
    starts, position = [], 0
    for text in texts:
        starts.append(position)
        position += len(text) + 1
    return " ".join(texts), starts


def _answer(tokens: list[Token], role: str, clause: Clause) -> tuple[str, int]:
    """The answer's text and its offset in the sentence: the asked argument's words without
    article or adposition; for time and count questions, the number."""
    slot = "0." + (counted_role(clause) if role == "count" else role)
    numbers_only = role in ("time", "count")
    chosen = [
        i
        for i, token in enumerate(tokens)
        if token.slot == slot
        and (token.upos == "NUM" if numbers_only else token.upos not in ("DET", "ADP"))
    ]
    text, starts = render(tokens)
    start = starts[chosen[0]]
    end = starts[chosen[-1]] + len(tokens[chosen[-1]].text)
    return text[start:end], start


# -- retrieval ---------------------------------------------------------------------------------


def bucc_records(world, task: str, split: str, lang: str) -> list[dict]:
    """Two sides of `world.size` sentences: `lang` (source side) and the source language
    (target side). A share are translations of each other (gold); the rest are distractors,
    half of them near-duplicates of a gold sentence with one detail changed (each side
    perturbs its own half of the gold sentences, so no distractor pair is a translation)."""
    rng = world.rng(task, split, lang)
    sampler = Sampler(world.entities, rng)
    n = world.size(task, split)
    realisers = {"source": world.realiser(lang), "target": world.realiser(world.source)}
    texts = {"source": [], "target": []}
    gold = []
    while len(gold) < round(BUCC_GOLD_SHARE * n):
        clause = sampler.clause(0.4)
        pair = {side: _say(realiser, rng, clause) for side, realiser in realisers.items()}
        if all(pair[side] not in texts[side] for side in texts):
            gold.append(clause)
            for side in texts:
                texts[side].append(pair[side])
    for half, side in enumerate(texts):
        while len(texts[side]) < n:
            if gold[half::2] and rng.random() < 0.5:
                near = rng.choice(gold[half::2])
                clause = rng.choice(contradictions(near, sampler) + other_patient(near, sampler))
            else:
                clause = sampler.clause(0.4)
            text = _say(realisers[side], rng, clause)
            if text not in texts[side]:
                texts[side].append(text)
    number = {side: rng.sample(range(n), n) for side in texts}  # position -> shuffled number
    records = []
    for side, other in (("source", "target"), ("target", "source")):
        for position, text in enumerate(texts[side]):
            gold_id = f"{lang}-{other}-{number[other][position]:05d}"
            records.append(
                {
                    "id": f"{lang}-{side}-{number[side][position]:05d}",
                    "lang": lang,
                    "side": side,
                    "text": text,
                    "gold": gold_id if position < len(gold) else None,
                }
            )
    return sorted(records, key=lambda record: record["id"])


def _say(realiser, rng, clause: Clause) -> str:
    sentence = Sentence((clause,))
    return render(realiser.sentence(sentence, random_style(rng, sentence)))[0]


def tatoeba_records(world, task: str, split: str, lang: str) -> list[dict]:
    """Short sentences of `lang` with their translation into the source language."""
    rng = world.rng(task, split, lang)
    sampler = Sampler(world.entities, rng)
    realiser, source_realiser = world.realiser(lang), world.realiser(world.source)
    records, targets = [], set()
    while len(records) < world.size(task, split):
        clause = sampler.clause(0.2)
        target = _say(source_realiser, rng, clause)
        if target in targets:
            continue
        targets.add(target)
        records.append(
            {
                "id": f"{task}-{split}-{len(records):05d}-{lang}",
                "lang": lang,
                "source": _say(realiser, rng, clause),
                "target": target,
            }
        )
    return records


BUILDERS = {
    "xnli": pair_records,
    "pawsx": pair_records,
    "udpos": token_records,
    "panx": token_records,
    "squad": qa_records,
    "xquad": qa_records,
    "mlqa": qa_records,
    "tydiqa": qa_records,
    "bucc": bucc_records,
    "tatoeba": tatoeba_records,
}
