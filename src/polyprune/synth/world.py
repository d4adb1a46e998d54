"""The demo world: its languages, its corpus in CC-100's layout, and its nine tasks."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import replace

from .language import FAMILIES, build_languages
from .meaning import Sampler, Sentence, draw_entities
from .realise import Realiser, Style, random_style, render
from .seeds import derive_rng
from .tasks import BUILDERS, PAIRED_WITH_SOURCE, SPLITS

PRIVATE_USE_CODE = re.compile(r"q[a-t][a-z]")  # ISO 639-2 qaa-qtz


class World:
    def __init__(
        self,
        seed: int,
        source: str,
        languages: dict,
        tasks: dict,
        bilingual_share: float = 0.0,
        codeswitch_rate: float = 0.0,
    ):
        self.seed = seed
        self.source = source
        self._bilingual_share = bilingual_share
        self._codeswitch_rate = codeswitch_rate
        self._languages = build_languages(languages, source, seed)
        self._corpus_sentences = {
            code: int(spec["corpus_sentences"]) for code, spec in languages.items()
        }
        self._sizes = tasks
        self.entities = draw_entities(seed)
        self._realisers = {
            code: Realiser(lang, self.entities, self._languages[source])
            for code, lang in self._languages.items()
        }
        self._meanings: dict[tuple[str, str], list] = {}

    @classmethod
    def from_config(cls, world_cfg: dict) -> World:
        """The world of the config's `world:` block (see docs/demo-world.md)."""
        languages = world_cfg["languages"]
        for code, spec in languages.items():
            if not PRIVATE_USE_CODE.fullmatch(code):
                raise ValueError(f"world language {code!r}: use a private-use code, qaa to qtz")
            if spec.get("family") not in FAMILIES:
                raise ValueError(f"world language {code}: family must be one of {list(FAMILIES)}")
        if world_cfg["source"] not in languages:
            raise ValueError(f"world source {world_cfg['source']!r} is not among its languages")
        tasks = world_cfg.get("tasks", {})
        for task, sizes in tasks.items():
            if task not in SPLITS or not set(sizes) <= set(SPLITS[task]):
                raise ValueError(f"world task {task}: splits must be among {SPLITS.get(task)}")
        return cls(
            int(world_cfg["seed"]),
            world_cfg["source"],
            languages,
            tasks,
            _share(world_cfg, "bilingual_share"),
            _share(world_cfg, "codeswitch_rate"),
        )

    @property
    def languages(self) -> list[str]:
        return list(self._languages)

    def family(self, code: str) -> str:
        return self._languages[code].family

    def name(self, code: str) -> str:
        return self._languages[code].name

    def profile(self, code: str) -> dict:
        """The language's typology: family, script, word order, grammar, sound changes."""
        return self._languages[code].profile()

    # -- corpus ----------------------------------------------------------------------------

    def corpus_lines(self, lang: str) -> Iterator[str]:
        """The language's corpus as CC-100 lays it out: one paragraph a line, a blank line
        between documents; `corpus_sentences` sentences in all."""
        rng = self.rng("corpus", lang)
        sampler = Sampler(self.entities, rng)
        left = self._corpus_sentences[lang]
        while left > 0:
            bilingual = lang != self.source and rng.random() < self._bilingual_share
            paragraphs = self._document(rng, sampler, lang, bilingual)
            for paragraph in paragraphs:
                paragraph = paragraph[:left]
                left -= len(paragraph)
                if paragraph:
                    yield " ".join(paragraph)
            if left > 0:
                yield ""

    def _document(self, rng, sampler: Sampler, lang: str, bilingual: bool) -> list[list[str]]:
        """A document as paragraphs of sentences: related sentences, some joined in pairs, now
        and then a question; a bilingual document follows each sentence by its translation
        into the source language, as bilingual web pages do."""
        topic, clauses = sampler.document(rng.randint(2, 8), modifiers=0.35)
        sentences = []
        while clauses:
            take = 2 if len(clauses) > 1 and rng.random() < 0.2 else 1
            links = (rng.choice(("AND", "BUT", "BECAUSE")),) * (take - 1)
            sentence = Sentence(tuple(clauses[:take]), links)
            sentences.append(self._say(rng, lang, sentence, bilingual))
            if rng.random() < 0.05:
                clause = replace(clauses[0], agent=topic)
                role = rng.choice([r for r in ("agent", "patient") if getattr(clause, r)])
                style = Style(synonym_key=rng.getrandbits(32))
                sentences.append([render(self._realisers[lang].question(clause, role, style))[0]])
            clauses = clauses[take:]
        paragraphs = []
        while sentences:
            size = rng.randint(1, 3)
            paragraphs.append([text for pair in sentences[:size] for text in pair])
            sentences = sentences[size:]
        return paragraphs

    def _say(self, rng, lang: str, sentence: Sentence, bilingual: bool) -> list[str]:
        """The sentence in `lang` (then in the source, if bilingual); in a non-source language
        `codeswitch_rate` of the content words take the source language's word, as web text
        mixes in words of a dominant language."""
        langs = (lang, self.source) if bilingual else (lang,)
        texts = []
        for code in langs:
            style = random_style(rng, sentence)
            if code != self.source:
                style = replace(style, switch_rate=self._codeswitch_rate)
            texts.append(render(self._realisers[code].sentence(sentence, style))[0])
        return texts

    # -- tasks -----------------------------------------------------------------------------

    def task_languages(self, task: str, split: str) -> list[str]:
        """Languages with data for (task, split); [] where the task has no such split."""
        if task not in SPLITS:
            raise ValueError(f"unknown task {task!r}; the world has {list(SPLITS)}")
        if split not in SPLITS[task] or not self.size(task, split):
            return []
        if task in PAIRED_WITH_SOURCE:
            return [code for code in self._languages if code != self.source]
        return self.languages

    def task_records(self, task: str, split: str, lang: str) -> list[dict]:
        """Records of (task, split, lang) in the normalised schema of docs/tasks.md."""
        if lang not in self.task_languages(task, split):
            raise ValueError(f"the world has no {task} {split} data in {lang!r}")
        return BUILDERS[task](self, task, split, lang)

    # -- shared by the task builders -------------------------------------------------------

    def size(self, task: str, split: str) -> int:
        return int(self._sizes.get(task, {}).get(split, 0))

    def rng(self, *names: object) -> random.Random:
        return derive_rng(self.seed, *names)

    def sampler(self, *names: object) -> Sampler:
        return Sampler(self.entities, self.rng(*names, "meanings"))

    def realiser(self, lang: str) -> Realiser:
        return self._realisers[lang]

    def parallel_meanings(self, task: str, split: str, make: Callable) -> list:
        """The meanings of (task, split) shared by all its languages (drawn once, cached)."""
        key = (task, split)
        if key not in self._meanings:
            self._meanings[key] = make(self.sampler(task, split), self.size(task, split))
        return self._meanings[key]


def _share(world_cfg: dict, key: str) -> float:
    value = world_cfg.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"world {key}: expected a share between 0 and 1, got {value!r}")
    return float(value)
