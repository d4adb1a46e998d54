"""The world's meanings: concepts, their kinds, and which combinations make sense.

Concept names are internal glosses; no language of the world ever writes them. A noun's kind
is also its hypernym (itself a noun), which the entailment and neutral operations of the
xnli-like task use.
"""

from __future__ import annotations

KINDS = ("person", "animal", "vehicle", "building", "food", "thing")

NOUNS = {
    "person": ("teacher", "doctor", "farmer", "child", "driver"),
    "animal": ("dog", "horse", "bird", "cat"),
    "vehicle": ("car", "boat", "bus"),
    "building": ("house", "school", "market", "station"),
    "food": ("bread", "apple", "fish", "soup"),
    "thing": ("book", "letter", "box", "phone", "key"),
}
KIND_OF = {noun: kind for kind, nouns in NOUNS.items() for noun in nouns}
ORG_TYPES = ("bank", "company", "university", "club")

# Verb: (agent kinds, patient kinds or None for intransitives). Besides the noun kinds, "org"
# and "city" stand for named organisations and named locations; a noun concept stands for itself.
VERBS = {
    "sleep": ("person animal", None),
    "arrive": ("person", None),
    "work": ("person", None),
    "run": ("person animal", None),
    "see": ("person animal", "person animal vehicle building thing city"),
    "find": ("person", "animal vehicle thing food"),
    "buy": ("person org", "animal vehicle building thing food"),
    "sell": ("person org", "animal vehicle building thing food"),
    "carry": ("person animal", "thing food"),
    "eat": ("person animal", "food"),
    "cook": ("person", "food"),
    "read": ("person", "book letter"),
    "write": ("person", "book letter"),
    "build": ("person org", "building vehicle"),
    "meet": ("person", "person"),
    "help": ("person org", "person org"),
    "call": ("person", "person org"),
    "visit": ("person", "person city building"),
    "pay": ("person org", "person org"),
    "hire": ("org", "person"),
}

# Adjective: the kinds it describes.
ADJECTIVES = {
    "big": "animal vehicle building thing",
    "small": "animal vehicle building thing",
    "new": "vehicle building thing",
    "old": "person animal vehicle building thing",
    "young": "person animal",
    "red": "vehicle building thing",
    "white": "animal vehicle building thing",
    "black": "animal vehicle building thing",
    "happy": "person",
    "fresh": "food",
    "hot": "food",
    "cold": "food",
}
ANTONYMS = {
    "big": "small",
    "small": "big",
    "new": "old",
    "young": "old",
    "white": "black",
    "black": "white",
    "hot": "cold",
    "cold": "hot",
}
MANNER = ("quickly", "slowly", "together")
TIME_WORDS = {"yesterday": "past", "today": "present", "tomorrow": "future"}
PRESENT_YEAR = 2024
# No year near the present, so that a year and a time word never describe the same time.
YEARS = (*range(1950, PRESENT_YEAR - 1), *range(PRESENT_YEAR + 2, 2041))

# Grammatical words, realised as free words or suffixes according to each language's grammar.
FUNCTION_WORDS = (
    "DEF", "NEG", "PAST", "FUT", "LOC", "YEAR_IN", "AND", "BUT", "BECAUSE",
    "PRON_SG", "PRON_PL", "WHO", "WHAT", "WHERE", "WHEN", "HOW_MANY", "QPART",
)  # fmt: skip
SUFFIXES = ("PL", "DEF", "ACC", "LOC", "PAST", "FUT", "AGR", "NEG")

# Concepts whose word is borrowed from the source language into every language.
LOANWORDS = ("phone", "bus", "university", "bank", "doctor")
# Share of content concepts that have a second word (a synonym) in every language.
SYNONYM_SHARE = 0.3

CONTENT_CONCEPTS = (
    *KINDS,
    *KIND_OF,
    *ORG_TYPES,
    *VERBS,
    *ADJECTIVES,
    *MANNER,
    *TIME_WORDS,
)


def fits(concept_or_kind: str, allowed: str) -> bool:
    """Whether a noun (or a kind, "org", "city") may fill a slot that allows `allowed`."""
    allowed_set = allowed.split()
    return concept_or_kind in allowed_set or KIND_OF.get(concept_or_kind) in allowed_set


def adjectives_for(noun: str) -> list[str]:
    kind = KIND_OF.get(noun, noun)
    return [adj for adj, kinds in ADJECTIVES.items() if kind in kinds.split()]


def tense_of(time: str | int | None) -> str | None:
    """The tense a time expression forces (None: any)."""
    if time is None:
        return None
    if isinstance(time, int):
        return "past" if time < PRESENT_YEAR else "future" if time > PRESENT_YEAR else "present"
    return TIME_WORDS[time]
