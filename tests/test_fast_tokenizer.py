"""FastTokenizer against transformers' own fast tokenizer, on every call polyprune makes, for an
XLM-R-layout tokenizer (the demo's) and a BERT one (segment ids, [CLS]/[SEP])."""

import subprocess
import sys

import pytest
from transformers import AutoTokenizer, BertTokenizerFast

from polyprune import data
from polyprune.fast_tokenizer import SETTINGS_FILE, FastTokenizer, save_tokenizer

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
]
SENTENCES = [" ".join(WORDS[i : i + 3 + i % 7]) for i in range(len(WORDS))]


@pytest.fixture(scope="module", params=["xlmr", "bert"])
def tokenizers(request, tmp_path_factory):
    """(ours, transformers') loaded from one directory that polyprune saved."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "xlmr":
        (root / "corpus.txt").write_text("\n".join(SENTENCES * 20))
        data.train_tokenizer([root / "corpus.txt"], vocab_size=60, out_dir=root / "tok")
    else:
        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS[::2], "##a", "##u", *"abu"]
        (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
        save_tokenizer(BertTokenizerFast(vocab_file=str(root / "vocab.txt")), root / "tok")
    ours = data.load_tokenizer(str(root / "tok"))
    assert isinstance(ours, FastTokenizer)
    return ours, AutoTokenizer.from_pretrained(str(root / "tok"))


def same_encoding(ours, theirs, rows_with=("word_ids", "sequence_ids")):
    assert dict(ours) == dict(theirs.data)
    for row in range(len(theirs.encodings)):
        for method in rows_with:
            assert getattr(ours, method)(row) == getattr(theirs, method)(row), (method, row)


# Each call is polyprune's: pair tasks, token tasks (word chunks, then chunks), QA windows and
# their question check, retrieval, corpus packing; run in this order on one instance, so that a
# setting one call leaves behind would show in the next.
CALLS = [
    ((SENTENCES[:6], SENTENCES[6:12]), {"truncation": True, "max_length": 12}),
    (([s.split() for s in SENTENCES],), {"is_split_into_words": True, "add_special_tokens": False}),
    (
        ([s.split() for s in SENTENCES],),
        {"is_split_into_words": True, "truncation": True, "max_length": 9},
    ),
    (
        ([*WORDS[:3], " ".join(WORDS[:6])], [" ".join(SENTENCES)] * 4),
        {
            "truncation": "only_second",
            "max_length": 32,
            "stride": 5,
            "return_overflowing_tokens": True,
            "return_offsets_mapping": True,
        },
    ),
    ((SENTENCES,), {"add_special_tokens": False}),
    ((SENTENCES,), {"truncation": True, "max_length": 10, "padding": True}),
    ((SENTENCES[:3], SENTENCES[3:6]), {}),
    ((SENTENCES[0], SENTENCES[1]), {}),
    ((SENTENCES[2],), {"add_special_tokens": False}),
    ((SENTENCES[3].split(),), {"is_split_into_words": True}),
    (([],), {"is_split_into_words": True, "add_special_tokens": False}),
]


def test_every_call_encodes_as_transformers_does(tokenizers):
    ours, theirs = tokenizers
    for args, kwargs in CALLS:
        same_encoding(ours(*args, **kwargs), theirs(*args, **kwargs))


def test_the_vocabulary_and_special_tokens_are_transformers(tokenizers):
    ours, theirs = tokenizers
    assert len(ours) == len(theirs)
    assert ours.convert_ids_to_tokens(range(len(ours))) == theirs.convert_ids_to_tokens(
        list(range(len(theirs)))
    )
    for name in ("bos_token", "eos_token", "unk_token", "pad_token", "mask_token"):
        assert getattr(ours, name) == getattr(theirs, name)
        assert getattr(ours, f"{name}_id") == getattr(theirs, f"{name}_id")
    for pair in (False, True):
        assert ours.num_special_tokens_to_add(pair) == theirs.num_special_tokens_to_add(pair)


def test_the_settings_file_is_what_marks_a_tokenizer_for_it(tokenizers, tmp_path):
    _, theirs = tokenizers
    theirs.save_pretrained(str(tmp_path / "plain"))
    assert not isinstance(data.load_tokenizer(str(tmp_path / "plain")), FastTokenizer)
    save_tokenizer(theirs, tmp_path / "ours")
    assert (tmp_path / "ours" / SETTINGS_FILE).is_file()
    assert isinstance(data.load_tokenizer(str(tmp_path / "ours")), FastTokenizer)


def test_loading_and_encoding_import_no_transformers(tokenizers, tmp_path):
    # importing transformers costs 1-2 s of every job that reads text
    _ours, theirs = tokenizers
    save_tokenizer(theirs, tmp_path / "tok")
    code = (
        "import sys\n"
        "from polyprune.data import load_tokenizer\n"
        f"tok = load_tokenizer({str(tmp_path / 'tok')!r})\n"
        "tok(['alpha beta'], ['gamma'], truncation=True, max_length=8)\n"
        "assert 'transformers' not in sys.modules, 'transformers was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
