"""Corpus sources, tokenizer, packed shards per language, language sampling and MLM batches."""

from __future__ import annotations

import json
import lzma
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from polyprune.config import sampling_probs
from polyprune.errors import DataError
from polyprune.fast_tokenizer import FastTokenizer, save_tokenizer, saved_by_polyprune
from polyprune.io import atomic_dir, atomic_file, file_digest, read_json, write_json
from polyprune.provenance import provenance

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

SPLITS = ("eval", "importance", "train")
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0-3, as XLM-R; <mask> is the last id
DIGEST_LIMIT = 1 << 30  # shards above 1 GiB are checked by size only on load


# ---- corpus sources ---------------------------------------------------------------------------


@contextmanager
def open_text(location: str):
    """A local path or URL, plain or .xz (CC-100's `<lang>.txt.xz`), as a stream of lines."""
    remote = location.startswith(("http://", "https://"))
    with (
        urllib.request.urlopen(location) if remote else open(location, "rb") as raw,
        lzma.open(raw) if location.endswith(".xz") else nullcontext(raw) as stream,
    ):
        yield (line.decode("utf-8", errors="replace") for line in stream)


def copy_lines(lines: Iterable[str], path: Path, max_chars: int | None = None) -> int:
    """Write lines to `path` atomically, stopping after `max_chars` characters; return chars."""
    written = 0
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for line in lines:
            line = line.rstrip("\n")
            out.write(line + "\n")
            written += len(line) + 1
            if max_chars and written >= max_chars:
                break
    return written


# ---- tokenizer --------------------------------------------------------------------------------


def train_tokenizer(corpus_files: list[Path], vocab_size: int, out_dir: Path) -> None:
    """A SentencePiece-style unigram tokenizer with XLM-R's special tokens and layout."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size - 1, special_tokens=list(SPECIAL_TOKENS), unk_token="<unk>"
    )
    tok.train([str(f) for f in corpus_files], trainer)
    tok = canonical_unigram(tok)
    tok.add_special_tokens(["<mask>"])
    with atomic_dir(out_dir) as tmp:
        save_tokenizer(xlmr_layout(tok), tmp)


def canonical_unigram(tok):
    """The trained unigram model with a vocabulary that is a function of the corpus alone.

    The trainer orders pieces of equal score by hash order, its scores carry float noise from
    summation order (about 1e-14), and it appends the corpus characters it did not keep at
    `min score - k * 1e-4` in hash order. Here scores are rounded to 1e-6, those fallback
    characters (within 0.01 of the lowest score) share one score, and pieces of equal score are
    sorted by text: the same corpus gives the same ids, and so the same shards."""
    from tokenizers import Tokenizer

    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    specials = len(SPECIAL_TOKENS)
    lowest = min(score for _, score in vocab[specials:])

    def canonical(score: float) -> float:
        return round(lowest, 4) if score - lowest < 0.01 else round(score, 6)

    pieces = sorted(((p, canonical(s)) for p, s in vocab[specials:]), key=lambda p: (-p[1], p[0]))
    spec["model"]["vocab"] = [*vocab[:specials], *map(list, pieces)]
    return Tokenizer.from_str(json.dumps(spec))


def xlmr_layout(tok) -> PreTrainedTokenizerFast:
    """`tok` (a tokenizers.Tokenizer holding XLM-R's special tokens) wrapped for transformers,
    with XLM-R's sequence templates: `<s> A </s>` and `<s> A </s> </s> B </s>`."""
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )


def load_tokenizer(path: str, revision: str | None = None):
    """A tokenizer that polyprune saved (FastTokenizer: no transformers import), or any other
    fast tokenizer through transformers (a hub id, a local checkpoint)."""
    try:
        if saved_by_polyprune(path):
            return FastTokenizer(path)
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(path, revision=revision)
    # OSError (missing), ValueError/KeyError (damaged JSON), plain Exception (tokenizers' Rust)
    except Exception as e:
        reason = (str(e).strip().splitlines() or [""])[0]
        raise DataError(
            f"{path}: missing or damaged tokenizer ({type(e).__name__}: {reason})"
        ) from e
    if not tok.is_fast:
        raise DataError(f"{path}: polyprune needs a fast tokenizer (offsets for QA)")
    return tok


# ---- shards -----------------------------------------------------------------------------------


def token_stream(tokenizer, lines: Iterable[str], batch: int = 512) -> Iterator[int]:
    """Token ids of every paragraph followed by </s>; blank lines (document breaks) are skipped."""
    eos = tokenizer.eos_token_id
    chunk: list[str] = []

    def flush():
        for ids in tokenizer(chunk, add_special_tokens=False)["input_ids"]:
            yield from ids
            yield eos

    for line in lines:
        if line.strip():
            chunk.append(line.strip())
        if len(chunk) == batch:
            yield from flush()
            chunk = []
    if chunk:
        yield from flush()


def pack(tokens: Iterable[int], seq_len: int, bos: int, eos: int, limit: int | None) -> np.ndarray:
    """Contiguous text cut into sequences `<s> ... </s>` of exactly `seq_len` tokens (RoBERTa's
    full-sentence packing); the last partial sequence is dropped."""
    body = seq_len - 2
    rows, row = [], []
    for t in tokens:
        row.append(t)
        if len(row) == body:
            rows.append([bos, *row, eos])
            row = []
            if limit and len(rows) >= limit:
                break
    return np.asarray(rows, dtype=np.int32).reshape(-1, seq_len)


def write_shards(
    packed: np.ndarray, out_dir: Path, lang: str, counts: dict[str, int], meta: dict, seed: int
) -> dict:
    """Split packed sequences into eval / importance / train and write them: the held-out
    splits are a seeded random sample of the sequences (in corpus order within each), not the
    corpus's first block; train is every other sequence, in order."""
    n_eval, n_imp = counts["eval"], counts["importance"]
    need = n_eval + n_imp + 1
    if len(packed) < need:
        raise DataError(
            f"{lang}: only {len(packed)} sequences, need at least {need} "
            f"(eval {n_eval} + importance {n_imp} + train)"
        )
    held = np.random.default_rng(seed).permutation(len(packed))[: n_eval + n_imp]
    rows = {
        "eval": np.sort(held[:n_eval]),
        "importance": np.sort(held[n_eval:]),
        "train": np.setdiff1d(np.arange(len(packed)), held),
    }
    files = {}
    with atomic_dir(out_dir) as tmp:
        for split in SPLITS:
            path = tmp / f"{split}.npy"
            _save_rows(path, packed, rows[split])
            files[split] = {"sequences": len(rows[split]), "sha256": file_digest(path)}
        meta = {
            "lang": lang,
            "seq_len": packed.shape[1],
            **meta,
            "held_out": f"eval and importance: a random sample of the sequences (seed {seed})",
            "files": files,
        }
        write_json(tmp / "meta.json", meta)
    return files


def shard_language(
    tokenizer_dir,
    location: str,
    out_dir,
    lang: str,
    data_cfg: dict,
    size: float | None,
    max_train: int | None,
    identity: dict,
) -> None:
    """Tokenize and pack one language's corpus into eval / importance / train shards."""
    tok = load_tokenizer(str(tokenizer_dir))
    check_mlm_layout(tok)
    counts = {"eval": data_cfg["eval_sequences"], "importance": data_cfg["importance_sequences"]}
    limit = None if max_train is None else counts["eval"] + counts["importance"] + max_train
    with open_text(location) as lines:
        stream = token_stream(tok, lines)
        packed = pack(stream, data_cfg["seq_len"], tok.bos_token_id, tok.eos_token_id, limit)
    tokens = int(packed.size)
    meta = {
        "size": size if size is not None else tokens,
        "size_unit": "table" if size is not None else "tokens",
        "source": location,
        "provenance": provenance(identity, [tokenizer_dir]),
    }
    write_shards(packed, Path(out_dir), lang, counts, meta, identity["seed"])


def _save_rows(path: Path, packed: np.ndarray, rows: np.ndarray, chunk: int = 1 << 16) -> None:
    """packed[rows] as a .npy file, written in chunks (a large corpus is not copied whole)."""
    out = np.lib.format.open_memmap(
        path, mode="w+", dtype=packed.dtype, shape=(len(rows), packed.shape[1])
    )
    for start in range(0, len(rows), chunk):
        out[start : start + chunk] = packed[rows[start : start + chunk]]
    out.flush()
    del out


def load_shard(shard_dir: str | Path, split: str) -> np.ndarray:
    """A split of a language's shards, memory-mapped, checked against its meta.json."""
    shard_dir = Path(shard_dir)
    meta = read_json(shard_dir / "meta.json", "shard meta")
    path = shard_dir / f"{split}.npy"
    expected = meta["files"][split]
    if path.stat().st_size <= DIGEST_LIMIT and file_digest(path) != expected["sha256"]:
        raise DataError(f"{path}: content does not match meta.json (corrupted or truncated shard)")
    try:
        arr = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: unreadable shard ({e})") from e
    if arr.shape != (expected["sequences"], meta["seq_len"]):
        raise DataError(f"{path}: shape {arr.shape}, meta.json says {expected['sequences']} rows")
    return arr


# ---- sampling and batches ---------------------------------------------------------------------


@dataclass
class MaskingSpec:
    mask_id: int
    vocab_size: int
    n_special: int  # ids below this are special (<s> <pad> </s> <unk>); <mask> is mask_id
    probability: float = 0.15


def mask_tokens(ids: np.ndarray, spec: MaskingSpec, rng: np.random.Generator):
    """BERT masking: pick `probability` of the non-special tokens; 80% <mask>, 10% a random
    token, 10% unchanged. Returns (inputs, labels) with labels -100 where nothing is predicted."""
    ids = np.asarray(ids, dtype=np.int64)
    maskable = (ids >= spec.n_special) & (ids != spec.mask_id)
    chosen = maskable & (rng.random(ids.shape) < spec.probability)
    # at least one prediction per sequence, so that no row is wasted
    for row in np.flatnonzero(~chosen.any(axis=1) & maskable.any(axis=1)):
        chosen[row, rng.choice(np.flatnonzero(maskable[row]))] = True
    labels = np.where(chosen, ids, -100)
    roll = rng.random(ids.shape)
    inputs = ids.copy()
    inputs[chosen & (roll < 0.8)] = spec.mask_id
    randomised = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[randomised] = rng.integers(spec.n_special, spec.mask_id, size=int(randomised.sum()))
    import torch  # here: the data preparation jobs (corpus, shard) start without torch

    return torch.from_numpy(inputs), torch.from_numpy(labels)


class ShardSet:
    """The train (or another) split of every language, with XLM-R's sampling over languages.

    Every micro-batch is one language (as XLM-R). Which language and which sequences is a pure
    function of (seed, step, micro-step, rank), so a resumed run sees exactly the same data."""

    def __init__(
        self,
        shard_dirs: dict[str, Path],
        split: str,
        alpha: float,
        masking: MaskingSpec,
        sizes: dict[str, float],
    ):
        """`sizes`: each language's corpus size, which the sampling probabilities follow."""
        self.langs = sorted(shard_dirs)
        self.arrays = {lang: load_shard(shard_dirs[lang], split) for lang in self.langs}
        empty = [lang for lang, a in self.arrays.items() if len(a) == 0]
        if empty:
            raise DataError(f"no {split} sequences for {empty}")
        probs = sampling_probs({lang: sizes[lang] for lang in self.langs}, alpha)
        self.probs = np.array([probs[lang] for lang in self.langs])
        self.masking = masking

    def batch(self, seed: int, step: int, micro: int, rank: int, size: int):
        rng = np.random.default_rng([seed, step, micro, rank])
        lang = self.langs[rng.choice(len(self.langs), p=self.probs)]
        data = self.arrays[lang]
        rows = rng.integers(0, len(data), size=size)
        inputs, labels = mask_tokens(data[np.sort(rows)], self.masking, rng)
        return lang, inputs, labels


def fixed_batches(data: np.ndarray, masking: MaskingSpec, size: int, seed: int):
    """Deterministic masked batches over all of `data` (for evaluation and importance)."""
    rng = np.random.default_rng(seed)
    for lo in range(0, len(data), size):
        yield mask_tokens(data[lo : lo + size], masking, rng)


def check_mlm_layout(tokenizer) -> None:
    """MLM data (packing, masking) relies on XLM-R's special tokens: ids 0-3 and <mask> last.
    BERT-layout models (mBERT) are fine-tuned, never MLM-trained, by polyprune."""
    first = tuple(tokenizer.convert_ids_to_tokens(list(range(len(SPECIAL_TOKENS)))))
    if first != SPECIAL_TOKENS or tokenizer.mask_token_id != len(tokenizer) - 1:
        raise DataError(
            f"MLM stages need XLM-R's special tokens {SPECIAL_TOKENS} at ids 0-3 and <mask> last;"
            f" this tokenizer has {first} and <mask> at {tokenizer.mask_token_id}"
            " (a BERT-layout model is only fine-tuned)"
        )


def masking_for(tokenizer, probability: float = 0.15) -> MaskingSpec:
    check_mlm_layout(tokenizer)
    return MaskingSpec(
        mask_id=tokenizer.mask_token_id,
        vocab_size=len(tokenizer),
        n_special=len(SPECIAL_TOKENS),
        probability=probability,
    )
