"""Meanings: named entities, typed logical forms, a sampler, and the operations on meanings
behind the xnli-like and pawsx-like labels."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import TypeVar

from .concepts import (
    ADJECTIVES,
    ANTONYMS,
    KIND_OF,
    KINDS,
    MANNER,
    NOUNS,
    ORG_TYPES,
    TIME_WORDS,
    VERBS,
    YEARS,
    adjectives_for,
    fits,
    tense_of,
)
from .language import proto_word
from .seeds import derive_rng

NAME_CONSONANTS, NAME_VOWELS = "ptkbdgmnlrsvz", "aeiou"  # names sound alike everywhere
ENTITY_COUNTS = {"person": 32, "org": 12, "city": 16}
NAMESAKE_SHARE = 0.3
COUNTS = tuple(range(2, 13))
ZIPF_EXPONENT = 1.0
T = TypeVar("T")


@dataclass(frozen=True)
class Entity:
    kind: str  # person | org | city
    words: tuple[str, ...]  # phonemic name words
    org_type: str | None = None  # an organisation's type concept (bank, club...)


def draw_entities(seed: int) -> dict[str, Entity]:
    """The world's people, organisations and cities, keyed "person:0", "org:3", ..."""
    rng = derive_rng(seed, "entities")
    seen: set[str] = set()

    def name(syllables=(2, 2, 3)) -> str:
        word = proto_word(rng, NAME_CONSONANTS, NAME_VOWELS, rng.choice(syllables))
        while word in seen:
            word = proto_word(rng, NAME_CONSONANTS, NAME_VOWELS, rng.choice(syllables))
        seen.add(word)
        return word

    family_names = [name() for _ in range(ENTITY_COUNTS["person"] // 2)]
    given_names = [name() for _ in range(ENTITY_COUNTS["person"])]
    entities = {}
    for i, given in enumerate(given_names):
        surname = (rng.choice(family_names),) if rng.random() < 0.6 else ()
        entities[f"person:{i}"] = Entity("person", (given, *surname))
    # Some organisations and cities bear a person's name (Ford, Washington): only the
    # context tells the entity type then.
    for i in range(ENTITY_COUNTS["org"]):
        base = rng.choice(family_names) if rng.random() < NAMESAKE_SHARE else name()
        entities[f"org:{i}"] = Entity("org", (base,), rng.choice(ORG_TYPES))
    for i in range(ENTITY_COUNTS["city"]):
        base = rng.choice(given_names) if rng.random() < NAMESAKE_SHARE else name()
        words = (base, name((1, 2))) if rng.random() < 0.25 else (base,)
        entities[f"city:{i}"] = Entity("city", words)
    return entities


@dataclass(frozen=True)
class NP:
    head: str  # a noun concept, an entity id ("person:3") or a pronoun (PRON_SG, PRON_PL)
    adj: str | None = None
    count: int | None = None  # a numeral
    plural: bool = False
    definite: bool = False

    @property
    def is_name(self) -> bool:
        return ":" in self.head

    @property
    def is_pronoun(self) -> bool:
        return self.head.startswith("PRON")

    @property
    def is_noun(self) -> bool:
        return not (self.is_name or self.is_pronoun)

    @property
    def kind(self) -> str:
        """What the NP refers to, for selectional restrictions: an entity kind or a noun."""
        return self.head.split(":")[0] if self.is_name else self.head


@dataclass(frozen=True)
class Clause:
    verb: str
    agent: NP
    patient: NP | None = None
    location: NP | None = None
    time: str | int | None = None  # a time word or a year
    manner: str | None = None
    tense: str = "past"
    negated: bool = False


@dataclass(frozen=True)
class Sentence:
    clauses: tuple[Clause, ...]
    links: tuple[str, ...] = ()  # AND, BUT or BECAUSE between consecutive clauses


class Sampler:
    """Draws meanings that respect the verbs' and adjectives' selectional restrictions."""

    def __init__(self, entities: dict[str, Entity], rng: random.Random):
        self.rng = rng
        self.by_kind = {
            kind: [key for key, e in entities.items() if e.kind == kind]
            for kind in ("person", "org", "city")
        }

    def pick(self, options: Sequence[T]) -> T:
        """A Zipfian choice: the first option is the most frequent, as in real text."""
        return self.rng.choices(options, _zipf_weights(len(options)))[0]

    def pick_distinct(self, options: Sequence[T], k: int) -> list[T]:
        return weighted_sample(self.rng, options, _zipf_weights(len(options)), k)

    def np(self, allowed: str, modifiers: float = 0.3) -> NP:
        groups = []
        for token in allowed.split():
            groups += [self.by_kind.get(token, ()), NOUNS.get(token, ())]
            if token in KIND_OF:
                groups.append((token,))
        head = self.pick(self.rng.choice([group for group in groups if group]))
        if ":" in head:
            return NP(head)
        if self.rng.random() < 0.1:
            head = KIND_OF[head]  # sometimes the general word: a vehicle, a person
        return self.noun_phrase(head, modifiers)

    def noun_phrase(self, noun: str, modifiers: float = 0.3) -> NP:
        rng = self.rng
        adj = self.pick(adjectives_for(noun)) if rng.random() < modifiers else None
        plural = rng.random() < 0.3
        count = self.pick(COUNTS) if plural and rng.random() < 0.6 else None
        return NP(noun, adj, count, plural, definite=rng.random() < 0.5)

    def clause(self, modifiers: float = 0.35, verb: str | None = None) -> Clause:
        rng = self.rng
        verb = verb or self.pick(list(VERBS))
        agent_kinds, patient_kinds = VERBS[verb]
        agent = self.np(agent_kinds)
        patient = None
        while patient_kinds and (patient is None or patient.head == agent.head):
            patient = self.np(patient_kinds)
        time = self.time() if rng.random() < modifiers else None
        location = self.location() if rng.random() < modifiers else None
        if location and patient and location.head == patient.head:
            location = None
        return Clause(
            verb,
            agent,
            patient,
            location,
            time,
            manner=self.pick(MANNER) if rng.random() < modifiers / 2 else None,
            tense=tense_of(time) or rng.choices(("past", "present", "future"), (5, 3, 2))[0],
            negated=rng.random() < 0.15,
        )

    def time(self, tense: str | None = None) -> str | int:
        options = [t for t in [*TIME_WORDS, *YEARS] if tense in (None, tense_of(t))]
        words = [t for t in options if isinstance(t, str)]
        return self.rng.choice(words if words and self.rng.random() < 0.6 else options)

    def location(self) -> NP:
        if self.rng.random() < 0.6:
            return NP(self.pick(self.by_kind["city"]))
        return NP(self.pick(NOUNS["building"]), definite=self.rng.random() < 0.7)

    def sentence(self, compound: float = 0.25) -> Sentence:
        """A sentence of one clause, or of two joined by and / but / because; a person agent
        is sometimes a pronoun, as in a sentence taken out of a text."""
        first = self.clause()
        if KIND_OF.get(first.agent.kind, first.agent.kind) == "person" and self.rng.random() < 0.15:
            first = replace(first, agent=NP("PRON_PL" if first.agent.plural else "PRON_SG"))
        if self.rng.random() >= compound:
            return Sentence((first,))
        second = self.clause(modifiers=0.15)
        return Sentence((first, second), (self.rng.choice(("AND", "AND", "BUT", "BECAUSE")),))

    def document(self, sentences: int, modifiers: float = 0.4) -> tuple[NP, list[Clause]]:
        """A topic (a person or an organisation) and related clauses with distinct verbs; after
        the first clause, a person is sometimes referred to by a pronoun."""
        rng = self.rng
        topic = NP(self.pick(self.by_kind["person" if rng.random() < 0.7 else "org"]))
        clauses = []
        for verb in self.pick_distinct(list(VERBS), sentences):
            agent_kinds, patient_kinds = VERBS[verb]
            clause = self.clause(modifiers, verb)
            if fits(topic.kind, agent_kinds) and rng.random() < 0.7:
                pronoun = clauses and topic.kind == "person" and rng.random() < 0.3
                clause = replace(clause, agent=NP("PRON_SG") if pronoun else topic)
            elif patient_kinds and fits(topic.kind, patient_kinds) and rng.random() < 0.5:
                clause = replace(clause, patient=topic)
            if clause.patient and clause.patient.head == clause.agent.head:
                clause = replace(clause, patient=self.np(patient_kinds))
            clauses.append(clause)
        return topic, clauses


def anchors(clause: Clause) -> set:
    """The clause's names and numbers: the words every language writes (nearly) alike."""
    found = {clause.time} if isinstance(clause.time, int) else set()
    for np in (clause.agent, clause.patient, clause.location):
        if np is not None:
            found |= {np.head} if np.is_name else {np.count} - {None}
    return found


def counted_role(clause: Clause) -> str:
    """The argument whose numeral a "how many" question asks for."""
    return "agent" if clause.agent.count else "patient"


def weighted_sample(rng: random.Random, items: Sequence[T], weights: Sequence[float], k: int):
    """k distinct items, each draw weighted like random.choices."""
    items, weights, chosen = list(items), list(weights), []
    for _ in range(min(k, len(items))):
        i = rng.choices(range(len(items)), weights)[0]
        chosen.append(items.pop(i))
        weights.pop(i)
    return chosen


@cache
def _zipf_weights(n: int) -> tuple[float, ...]:
    return tuple(1 / (rank + 1) ** ZIPF_EXPONENT for rank in range(n))


# Operations on meanings. Each returns a list of candidate clauses (empty: not applicable).


def weaker(clause: Clause, agent_too: bool = True) -> list[Clause]:
    """Clauses that say less: a modifier dropped, a noun generalised to its kind."""
    options = [
        replace(clause, **{slot: None})
        for slot in ("location", "time", "manner")
        if getattr(clause, slot) is not None
    ]
    roles = ("agent", "patient") if agent_too else ("patient",)
    for role in roles:
        np = getattr(clause, role)
        if np is None or np.is_pronoun:
            continue
        if np.head.startswith("person:"):
            options.append(replace(clause, **{role: NP("person")}))
        if np.adj:
            options.append(replace(clause, **{role: replace(np, adj=None)}))
        if np.count:
            options.append(replace(clause, **{role: replace(np, count=None)}))
        if np.head in KIND_OF and (np.adj is None or fits(KIND_OF[np.head], ADJECTIVES[np.adj])):
            options.append(replace(clause, **{role: replace(np, head=KIND_OF[np.head])}))
    return options


def stronger(clause: Clause, sampler: Sampler, agent_too: bool = True) -> list[Clause]:
    """Clauses that say more: a modifier added, a kind specialised to one of its nouns."""
    rng = sampler.rng
    options = []
    if clause.location is None:
        options.append(replace(clause, location=sampler.location()))
    if clause.time is None:
        options.append(replace(clause, time=sampler.time(clause.tense)))
    if clause.manner is None:
        options.append(replace(clause, manner=rng.choice(MANNER)))
    roles = ("agent", "patient") if agent_too else ("patient",)
    for role in roles:
        np = getattr(clause, role)
        if np is None or not np.is_noun:
            continue
        if np.adj is None:
            adj = rng.choice(adjectives_for(np.head))
            options.append(replace(clause, **{role: replace(np, adj=adj)}))
        if np.head in KINDS:
            specific = [n for n in NOUNS[np.head] if np.adj is None or n in _described(np.adj)]
            options.append(replace(clause, **{role: replace(np, head=rng.choice(specific))}))
    return options


def other_patient(clause: Clause, sampler: Sampler) -> list[Clause]:
    """The same event with an unrelated patient (neither more nor less said)."""
    patient_kinds = VERBS[clause.verb][1]
    if clause.patient is None:
        return []
    patient = sampler.np(patient_kinds)
    if _related(patient, clause.patient) or patient.head == clause.agent.head:
        return []
    return [replace(clause, patient=patient)]


def contradictions(clause: Clause, sampler: Sampler) -> list[Clause]:
    """Clauses that cannot hold with it: negation flipped, or (unnegated) a different number,
    opposite adjective, time or city."""
    rng = sampler.rng
    options = [replace(clause, negated=not clause.negated)]
    if clause.negated:
        return options
    for role in ("agent", "patient"):
        np = getattr(clause, role)
        if np is not None and np.count:
            count = rng.choice([n for n in COUNTS if n != np.count])
            options.append(replace(clause, **{role: replace(np, count=count)}))
        if np is not None and np.adj in ANTONYMS and ANTONYMS[np.adj] in adjectives_for(np.head):
            options.append(replace(clause, **{role: replace(np, adj=ANTONYMS[np.adj])}))
    if clause.time is not None:
        time = sampler.time()
        if time != clause.time:
            options.append(replace(clause, time=time, tense=tense_of(time)))
    if clause.location is not None and clause.location.is_name:
        city = sampler.location()
        if city.is_name and city.head != clause.location.head:
            options.append(replace(clause, location=city))
    return options


def swapped_roles(clause: Clause) -> list[Clause]:
    """Agent and patient exchanged (PAWS's word-swap non-paraphrase), where both still fit."""
    agent_kinds, patient_kinds = VERBS[clause.verb]
    if clause.patient is None or clause.agent.is_pronoun:
        return []
    if fits(clause.patient.kind, agent_kinds) and fits(clause.agent.kind, patient_kinds):
        return [replace(clause, agent=clause.patient, patient=clause.agent)]
    return []


def swapped_adjectives(clause: Clause) -> list[Clause]:
    agent, patient = clause.agent, clause.patient
    if not (patient and agent.adj and patient.adj) or agent.adj == patient.adj:
        return []
    if patient.adj in adjectives_for(agent.head) and agent.adj in adjectives_for(patient.head):
        return [
            replace(
                clause,
                agent=replace(agent, adj=patient.adj),
                patient=replace(patient, adj=agent.adj),
            )
        ]
    return []


def swapped_agents(first: Clause, second: Clause) -> list[tuple[Clause, Clause]]:
    """Two clauses with their agents exchanged, where both still fit."""
    if first.agent.head == second.agent.head:
        return []
    if fits(second.agent.kind, VERBS[first.verb][0]) and fits(
        first.agent.kind, VERBS[second.verb][0]
    ):
        return [(replace(first, agent=second.agent), replace(second, agent=first.agent))]
    return []


def _related(a: NP, b: NP) -> bool:
    """Whether one NP may describe what the other does: the same head, or one is the other's
    kind (a car / a vehicle, Mara / a person)."""
    kind_a, kind_b = KIND_OF.get(a.kind, a.kind), KIND_OF.get(b.kind, b.kind)
    return a.head == b.head or a.head == kind_b or b.head == kind_a


def _described(adjective: str) -> list[str]:
    return [noun for noun in KIND_OF if fits(noun, ADJECTIVES[adjective])]
