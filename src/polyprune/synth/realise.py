"""From meanings to words: one language's sentences and questions as tagged tokens, and text."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, replace

from .concepts import CONTENT_CONCEPTS, KIND_OF
from .language import Language
from .meaning import NP, Clause, Entity, Sentence, counted_role

SWITCHABLE = frozenset(CONTENT_CONCEPTS)
NER_TYPES = {"person": "PER", "org": "ORG", "city": "LOC"}
LINK_UPOS = {"AND": "CCONJ", "BUT": "CCONJ", "BECAUSE": "SCONJ"}
BASE_ORDERS = {
    "SVO": ("agent", "verb", "patient", "manner", "location", "time"),
    "SOV": ("agent", "time", "location", "patient", "manner", "verb"),
    "VSO": ("verb", "agent", "patient", "manner", "location", "time"),
}


@dataclass(frozen=True)
class Token:
    text: str
    upos: str
    ner: str = "O"
    slot: str = ""  # "<clause index>.<role>" for the words of an argument or adjunct


@dataclass(frozen=True)
class Style:
    """Choices that change the words but not the meaning."""

    front: str | None = None  # "time" or "location": that adjunct opens the clause
    scramble: bool = False  # patient before agent (only where case marks the roles)
    synonym_rate: float = 0.3  # share of concepts said with their second word, if they have one
    synonym_key: int = 0
    switch_rate: float = 0.0  # share of content concepts said in the source language's word

    def synonym(self, concept: str) -> bool:
        return self._draw(concept) < self.synonym_rate

    def switched(self, concept: str) -> bool:
        if not self.switch_rate or concept not in SWITCHABLE:
            return False
        return self._draw(f"switch/{concept}") < self.switch_rate

    def _draw(self, name: str) -> float:
        return zlib.crc32(f"{self.synonym_key}/{name}".encode()) / 2**32


def random_style(rng: random.Random, sentence: Sentence, synonym_rate: float = 0.3) -> Style:
    adjuncts = sorted(
        {slot for slot in ("time", "location") for c in sentence.clauses if getattr(c, slot)}
    )
    front = rng.choice(adjuncts) if adjuncts and rng.random() < 0.3 else None
    return Style(front, rng.random() < 0.2, synonym_rate, rng.getrandbits(32))


class Realiser:
    def __init__(self, lang: Language, entities: dict[str, Entity], source: Language):
        self.lang = lang
        self.source = source  # the language that code-switched words come from
        self.grammar = lang.grammar
        self.entities = entities

    def sentence(self, sentence: Sentence, style: Style) -> list[Token]:
        tokens = self.clause(sentence.clauses[0], style, 0)
        for i, (link, clause) in enumerate(zip(sentence.links, sentence.clauses[1:]), 1):
            tokens.append(self._word(link, LINK_UPOS[link]))
            tokens += self.clause(clause, style, i)
        return [*_capitalised(tokens), Token(".", "PUNCT")]

    def clause(self, clause: Clause, style: Style, index: int) -> list[Token]:
        parts = self._parts(clause, style, index)
        return [token for part in self._order(style, parts) for token in parts[part]]

    def question(self, clause: Clause, role: str, style: Style) -> list[Token]:
        """A question about `role` (agent, patient, location, time or count) of the clause."""
        asked = counted_role(clause) if role == "count" else role
        parts = self._parts(clause, style, 0)
        parts[asked] = self._question_word(clause, role, asked, style)
        order = self._order(style, parts)
        if self.lang.wh == "front":
            order = [asked] + [part for part in order if part != asked]
        tokens = [token for part in order for token in parts[part]]
        if self.lang.wh == "in-situ":
            tokens.append(self._word("QPART", "PART"))
        return [*_capitalised(tokens), Token("?", "PUNCT")]

    def _question_word(self, clause: Clause, role: str, asked: str, style: Style) -> list[Token]:
        if role == "count":
            np = getattr(clause, asked)
            return self._np(np, style, "ACC" if asked == "patient" else None, "", ask_count=True)
        if role in ("location", "time"):
            return [self._word("WHERE" if role == "location" else "WHEN", "ADV")]
        kind = getattr(clause, role).kind
        who = KIND_OF.get(kind, kind) in ("person", "org")
        case = ("ACC",) if role == "patient" and self.grammar.case == "suffix" else ()
        return [self._word("WHO" if who else "WHAT", "PRON", suffixes=case)]

    def _order(self, style: Style, parts: dict) -> list[str]:
        order = [part for part in BASE_ORDERS[self.lang.order] if part in parts]
        if style.scramble and self.grammar.case == "suffix" and "patient" in order:
            agent, patient = order.index("agent"), order.index("patient")
            order[agent], order[patient] = "patient", "agent"
        if style.front in order:
            order.remove(style.front)
            order.insert(0, style.front)
        return order

    def _parts(self, clause: Clause, style: Style, index: int) -> dict[str, list[Token]]:
        slot = f"{index}."
        parts = {
            "agent": self._np(clause.agent, style, None, slot + "agent"),
            "verb": self._verb(clause, style),
        }
        if clause.patient:
            parts["patient"] = self._np(clause.patient, style, "ACC", slot + "patient")
        if clause.location:
            parts["location"] = self._location(clause.location, style, slot + "location")
        if clause.time is not None:
            parts["time"] = self._time(clause.time, style, slot + "time")
        if clause.manner:
            parts["manner"] = [self._word(clause.manner, "ADV", style)]
        return parts

    def _np(self, np: NP, style, case, slot, ask_count=False) -> list[Token]:
        suffixes = (case,) if case and self.grammar.case == "suffix" else ()
        if np.is_pronoun:
            return [self._word(np.head, "PRON", style, suffixes, slot)]
        if np.is_name:
            return self._name(np.head, suffixes, slot)
        markers = []
        if np.plural and (np.count is None or self.grammar.plural == "always"):
            markers.append("PL")
        if np.definite and self.grammar.article == "suffix":
            markers.append("DEF")
        tokens = [Token(self._spelled(np.head, style, (*markers, *suffixes)), "NOUN", slot=slot)]
        if np.adj:
            adj = self._word(np.adj, "ADJ", style, slot=slot)
            tokens = [adj, *tokens] if self.grammar.adjective == "pre" else [*tokens, adj]
        if ask_count:
            return [self._word("HOW_MANY", "ADV"), *tokens]
        if np.count:
            tokens.insert(0, Token(str(np.count), "NUM", slot=slot))
        if np.definite and self.grammar.article == "word":
            tokens.insert(0, self._word("DEF", "DET", slot=slot))
        return tokens

    def _name(self, key: str, suffixes: tuple[str, ...], slot: str) -> list[Token]:
        """A name's words, in the Latin alphabet in every language (the world's convention for
        names, as for brands); an organisation adds its type word in the language's own words.
        A case suffix joins a Latin name directly, or with a hyphen in another script."""
        entity = self.entities[key]
        lang = self.lang
        words = [(word, "latin") for word in entity.words]
        if entity.org_type:
            native = (lang.word(entity.org_type), lang.script)
            words = [*words, native] if self.grammar.adjective == "pre" else [native, *words]
        texts = [_upper_first(lang.spell(word, script)) for word, script in words[:-1]]
        texts.append(_upper_first(self._foreign(*words[-1], suffixes)))
        tag = NER_TYPES[entity.kind]
        return [Token(text, "PROPN", f"{'BI'[i > 0]}-{tag}", slot) for i, text in enumerate(texts)]

    def _location(self, np: NP, style: Style, slot: str) -> list[Token]:
        if self.grammar.case == "suffix":
            return self._np(np, style, "LOC", slot)
        adposition = self._word("LOC", "ADP", slot=slot)
        tokens = self._np(np, style, None, slot)
        return [adposition, *tokens] if self.lang.adposition == "pre" else [*tokens, adposition]

    def _time(self, time: str | int, style: Style, slot: str) -> list[Token]:
        if isinstance(time, str):
            return [self._word(time, "ADV", style, slot=slot)]
        adposition = self._word("YEAR_IN", "ADP", slot=slot)
        year = Token(str(time), "NUM", slot=slot)
        return [adposition, year] if self.lang.adposition == "pre" else [year, adposition]

    def _verb(self, clause: Clause, style: Style) -> list[Token]:
        grammar = self.grammar
        tense = {"past": "PAST", "future": "FUT"}.get(clause.tense)
        suffixes = []
        if tense and grammar.tense == "suffix":
            suffixes.append(tense)
        if grammar.agreement and (clause.agent.plural or clause.agent.head == "PRON_PL"):
            suffixes.append("AGR")
        if clause.negated and grammar.negation == "suffix":
            suffixes.append("NEG")
        tokens = [self._word(clause.verb, "VERB", style, suffixes)]
        if tense and grammar.tense == "aux":
            aux = self._word(tense, "AUX")
            tokens = [*tokens, aux] if self.lang.order == "SOV" else [aux, *tokens]
        if clause.negated and grammar.negation == "particle":
            tokens.insert(0, self._word("NEG", "PART"))
        return tokens

    def _word(self, concept, upos, style=None, suffixes=(), slot="") -> Token:
        return Token(self._spelled(concept, style, suffixes), upos, slot=slot)

    def _spelled(self, concept: str, style: Style | None, suffixes: tuple[str, ...]) -> str:
        lang = self.lang
        if style is not None and style.switched(concept):
            return self._foreign(self.source.word(concept), self.source.script, suffixes)
        stem = lang.word(concept, style is not None and style.synonym(concept))
        return lang.spell(lang.attach(stem, *suffixes))

    def _foreign(self, stem: str, script: str, suffixes: tuple[str, ...]) -> str:
        """A word kept in its own script (a name, a code-switched word) with this language's
        suffixes: joined directly, or with a hyphen in a non-Latin script."""
        lang = self.lang
        text = lang.spell(stem, script)
        ending = lang.attach(stem, *suffixes)[len(stem) :]
        if not ending:
            return text
        hyphen = script != lang.script and not lang.script.startswith("latin")
        return text + ("-" if hyphen else "") + lang.spell(ending)


def render(tokens: list[Token]) -> tuple[str, list[int]]:
    """Text with punctuation attached to the word before it, and each token's start offset."""
    text, starts = "", []
    for token in tokens:
        if text and token.upos != "PUNCT":
            text += " "
        starts.append(len(text))
        text += token.text
    return text, starts


def _capitalised(tokens: list[Token]) -> list[Token]:
    return [replace(tokens[0], text=_upper_first(tokens[0].text)), *tokens[1:]]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]
