"""Languages of the world: families, scripts, sound changes, grammars and lexicons.

Words are built in a phonemic alphabet of single characters (S = sh, C = ch, Z = zh, x = kh,
j = y-glide, Y = high central vowel, A/O = front a/o) and spelled in a script at the end.
A family draws one proto-word per concept; each daughter language derives its word by its own
sound changes, so the languages of a family share roots that look alike in the same script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace

from .concepts import CONTENT_CONCEPTS, FUNCTION_WORDS, LOANWORDS, SUFFIXES, SYNONYM_SHARE
from .seeds import derive_rng

VOWELS = "aeiouYAO"
_V = f"[{VOWELS}]"


@dataclass(frozen=True)
class Grammar:
    """What a language marks and where; a family sets defaults, a language may override."""

    adjective: str = "pre"  # pre | post: adjective before or after its noun
    article: str = "none"  # none | word | suffix: the definite article
    case: str = "none"  # none | suffix: accusative and locative suffixes (else an adposition)
    plural: str = "always"  # always | no-numeral: plural suffix also after a numeral or not
    tense: str = "aux"  # aux | suffix: past and future as an auxiliary or a verb suffix
    agreement: bool = False  # verb suffix when the agent is plural
    negation: str = "particle"  # particle | suffix


GRAMMAR_CHOICES = {
    "adjective": ("pre", "post"),
    "article": ("none", "word", "suffix"),
    "case": ("none", "suffix"),
    "plural": ("always", "no-numeral"),
    "tense": ("aux", "suffix"),
    "agreement": (False, True),
    "negation": ("particle", "suffix"),
}


@dataclass(frozen=True)
class Family:
    order: str  # SVO | SOV | VSO
    wh: str  # front | in-situ: where a question word goes
    adposition: str  # pre | post
    script: str
    consonants: str
    vowels: str
    linker: str  # inserted between a vowel-final stem and a vowel-initial suffix
    grammar: Grammar
    borrowing: float = 0.0  # share of content words borrowed from the source language


FAMILIES = {
    "aldic": Family(
        "SVO", "front", "pre", "latin", "ptkbdgmnlrsvf", "aeiou", "n", Grammar(article="word")
    ),
    "vetric": Family(
        "SOV", "in-situ", "post", "cyrillic", "ptkbdgmnlrszvxSCZ", "aeiouY", "v",
        Grammar(case="suffix", tense="suffix", agreement=True), borrowing=0.1,
    ),
    "sunic": Family(
        "VSO", "front", "pre", "latin-ext", "tkmnlrshjSC", "aeiouAO", "j",
        Grammar(adjective="post", article="suffix", case="suffix", plural="no-numeral",
                tense="suffix", negation="suffix"), borrowing=0.4,
    ),
}  # fmt: skip

# Spelling of each phoneme per script; Latin letters not listed spell themselves.
_SPELLING_TABLE = """
a b  d e f g h i j  k l m n o p r s t u  v x z S  C  Z  Y A  O
а б  д е ф г х и й  к л м н о п р с т у  в х з ш  ч  ж  ы я  ё
α μπ δ ε φ γ χ ι γι κ λ μ ν ο π ρ σ τ ου β χ ζ σσ τσ τζ υ αι οι
"""
_PHONEMES, _CYRILLIC, _GREEK = (row.split() for row in _SPELLING_TABLE.strip().splitlines())
SCRIPTS = {
    "latin": {"S": "sh", "C": "ch", "Z": "zh", "x": "kh", "j": "y", "Y": "y", "A": "ae", "O": "oe"},
    "latin-ext": {"S": "ş", "C": "ç", "Z": "ž", "x": "ğ", "j": "y", "Y": "ı", "A": "ä", "O": "ö"},
    "cyrillic": dict(zip(_PHONEMES, _CYRILLIC, strict=True)),
    "greek": dict(zip(_PHONEMES, _GREEK, strict=True)),
}

# Regular sound changes (pattern, replacement) on phonemic words; each language draws a few.
SOUND_CHANGES = (
    ("p", "f"),
    (f"(?<={_V})t(?={_V})", "d"),
    (f"(?<={_V})k(?={_V})", "g"),
    ("k(?=[ie])", "C"),
    ("s(?=[ie])", "S"),
    ("b", "v"),
    ("d(?=[ie])", "z"),
    ("o", "u"),
    ("r", "l"),
    ("g(?=[ie])", "j"),
    (f"(?<=..[^{VOWELS}]){_V}$", ""),
    (f"(?<=[^{VOWELS}])$", "a"),
    ("a$", "e"),
    ("i", "e"),
)
CHANGES_PER_LANGUAGE = 3


@dataclass
class Language:
    code: str
    name: str
    family: str
    script: str
    grammar: Grammar
    sound_changes: tuple[tuple[str, str], ...]
    words: dict[str, tuple[str, ...]] = field(default_factory=dict)  # concept -> words
    suffixes: dict[str, str] = field(default_factory=dict)

    @property
    def order(self) -> str:
        return FAMILIES[self.family].order

    @property
    def wh(self) -> str:
        return FAMILIES[self.family].wh

    @property
    def adposition(self) -> str:
        return FAMILIES[self.family].adposition

    def evolve(self, proto: str) -> str:
        """The word a proto-word becomes in this language."""
        word = proto
        for pattern, replacement in self.sound_changes:
            word = re.sub(pattern, replacement, word)
        return word if re.search(_V, word) else proto

    def word(self, concept: str, synonym: bool = False) -> str:
        forms = self.words[concept]
        return forms[1] if synonym and len(forms) > 1 else forms[0]

    def attach(self, stem: str, *suffix_names: str) -> str:
        for name in suffix_names:
            suffix = self.suffixes[name]
            if stem[-1] in VOWELS and suffix[0] in VOWELS:
                stem += FAMILIES[self.family].linker
            stem += suffix
        return stem

    def spell(self, phonemic: str, script: str | None = None) -> str:
        """A word in this language's script (or in `script`, for a foreign name)."""
        script = script or self.script
        text = "".join(SCRIPTS[script].get(char, char) for char in phonemic)
        return re.sub("σ$", "ς", text) if script == "greek" else text

    def profile(self) -> dict:
        """The language's typology in plain values (for documentation and reports)."""
        grammar = {f.name: getattr(self.grammar, f.name) for f in fields(Grammar)}
        changes = [
            f"{pattern} > {replacement or '0'}" for pattern, replacement in self.sound_changes
        ]
        return {
            "name": self.name,
            "family": self.family,
            "script": self.script,
            "order": self.order,
            "wh": self.wh,
            "adposition": self.adposition,
            **grammar,
            "sound_changes": changes,
        }


def build_languages(specs: dict[str, dict], source: str, seed: int) -> dict[str, Language]:
    """Languages from the config's `languages:` block, with lexicons drawn from the seed."""
    languages = {code: _language(code, spec, seed) for code, spec in specs.items()}
    synonyms = _synonym_concepts(seed)
    families = sorted({lang.family for lang in languages.values()})
    families.sort(key=lambda family: family != languages[source].family)
    for family in families:
        daughters = [lang for lang in languages.values() if lang.family == family]
        loans = {} if family == languages[source].family else languages[source].words
        _draw_lexicon(daughters, family, synonyms, loans, seed)
    return languages


def _language(code: str, spec: dict, seed: int) -> Language:
    family = FAMILIES[spec["family"]]
    overrides = spec.get("grammar", {})
    for key, value in overrides.items():
        if value not in GRAMMAR_CHOICES.get(key, ()):
            raise ValueError(f"world language {code}: bad grammar {key}={value!r}")
    grammar = replace(family.grammar, **overrides)
    rng = derive_rng(seed, "sound-changes", code)
    changes = sorted(rng.sample(range(len(SOUND_CHANGES)), CHANGES_PER_LANGUAGE))
    return Language(
        code=code,
        name=spec["name"],
        family=spec["family"],
        script=spec.get("script", family.script),
        grammar=grammar,
        sound_changes=tuple(SOUND_CHANGES[i] for i in changes),
    )


def _synonym_concepts(seed: int) -> set[str]:
    rng = derive_rng(seed, "synonyms")
    return set(rng.sample(CONTENT_CONCEPTS, round(SYNONYM_SHARE * len(CONTENT_CONCEPTS))))


def _draw_lexicon(daughters, family_name, synonyms, loans, seed) -> None:
    """Give every daughter a word per concept (and synonym), distinct within a language but for
    borrowings: a share of concepts take the source language's word, adapted by the daughter's
    own sound changes."""
    family = FAMILIES[family_name]
    rng = derive_rng(seed, "lexicon", family_name)
    words_used = {lang.code: set() for lang in daughters}
    suffixes_used = {lang.code: set() for lang in daughters}

    def draw(used, syllables: tuple[int, ...], templates: tuple[str, ...] = ("CV",)) -> list[str]:
        while True:
            shape = rng.choice(syllables), rng.choice(templates)
            proto = proto_word(rng, family.consonants, family.vowels, *shape)
            forms = [lang.evolve(proto) for lang in daughters]
            if all(form not in used[lang.code] for lang, form in zip(daughters, forms)):
                for lang, form in zip(daughters, forms):
                    used[lang.code].add(form)
                return forms

    for concept in CONTENT_CONCEPTS:
        borrowed = concept in LOANWORDS or rng.random() < family.borrowing
        if loans and borrowed:
            forms = [[lang.evolve(loans[concept][0])] for lang in daughters]
            for lang, (form,) in zip(daughters, forms):
                words_used[lang.code].add(form)
        else:
            forms = [[form] for form in draw(words_used, (2,))]
        if concept in synonyms:
            for own, synonym in zip(forms, draw(words_used, (2,))):
                own.append(synonym)
        for lang, own in zip(daughters, forms):
            lang.words[concept] = tuple(own)
    for concept in FUNCTION_WORDS:
        for lang, form in zip(daughters, draw(words_used, (1, 1, 2))):
            lang.words[concept] = (form,)
    for suffix in SUFFIXES:
        for lang, form in zip(daughters, draw(suffixes_used, (1,), ("V", "VC", "CV"))):
            lang.suffixes[suffix] = form


def proto_word(rng, consonants: str, vowels: str, syllables: int, template: str = "CV") -> str:
    """A random word of `syllables` syllables; `template` shapes the first one (V, VC, CV)."""
    parts = []
    for i in range(syllables):
        shape = template if i == 0 else rng.choice(("CV", "CV", "CVC"))
        if i == syllables - 1 and syllables > 1 and rng.random() < 0.3:
            shape = "CVC"
        parts.append("".join(rng.choice(consonants if c == "C" else vowels) for c in shape))
    return "".join(parts)
