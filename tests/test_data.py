import json
import lzma
import shutil
import subprocess
import sys

import numpy as np
import pytest

from polyprune import data
from polyprune.errors import DataError
from polyprune.fast_tokenizer import SETTINGS_FILE

TEXT = [
    "alpha beta gamma delta",
    "epsilon zeta eta theta iota",
    "",
    "kappa lambda mu nu xi omicron pi",
    "rho sigma tau upsilon",
] * 40


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tok")
    (root / "corpus.txt").write_text("\n".join(TEXT))
    data.train_tokenizer([root / "corpus.txt"], vocab_size=60, out_dir=root / "tok")
    return root / "tok"


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    return data.load_tokenizer(str(tokenizer_dir))


def test_tokenizer_has_xlmr_special_tokens(tokenizer):
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
    assert tokenizer.mask_token_id == len(tokenizer) - 1
    (pair,) = tokenizer(["alpha"], ["beta"])["input_ids"]
    assert pair[0] == 0 and pair[-1] == 2 and pair.count(2) == 3  # <s> A </s></s> B </s>


def test_pack_cuts_contiguous_text_into_full_sequences():
    packed = data.pack(iter(range(10, 33)), seq_len=6, bos=0, eos=2, limit=None)
    assert packed.tolist() == [
        [0, 10, 11, 12, 13, 2],
        [0, 14, 15, 16, 17, 2],
        [0, 18, 19, 20, 21, 2],
        [0, 22, 23, 24, 25, 2],
        [0, 26, 27, 28, 29, 2],
    ]  # 30-32 (a partial sequence) are dropped
    assert len(data.pack(iter(range(100)), 6, 0, 2, limit=2)) == 2


def test_token_stream_ends_paragraphs_and_skips_document_breaks(tokenizer):
    ids = list(data.token_stream(tokenizer, ["alpha beta", "", "gamma"]))
    assert ids.count(tokenizer.eos_token_id) == 2
    assert ids[-1] == tokenizer.eos_token_id


def test_open_text_reads_xz(tmp_path):
    path = tmp_path / "xx.txt.xz"
    with lzma.open(path, "wt", encoding="utf-8") as fh:
        fh.write("ein\n\nzwei\n")
    with data.open_text(str(path)) as lines:
        assert [line.rstrip("\n") for line in lines] == ["ein", "", "zwei"]


def shards(tmp_path, rows=40, seq_len=8, lang="xa", seed=0):
    packed = np.arange(rows * seq_len, dtype=np.int32).reshape(rows, seq_len) + 4
    out = tmp_path / lang
    data.write_shards(packed, out, lang, {"eval": 5, "importance": 10}, {"size": rows}, seed)
    return out, packed


def test_held_out_splits_are_a_seeded_sample_and_train_the_rest_in_order(tmp_path):
    out, _ = shards(tmp_path)
    first = {s: data.load_shard(out, s)[:, 0] // 8 for s in ("eval", "importance", "train")}
    assert [len(first[s]) for s in first] == [5, 10, 25]
    assert sorted(np.concatenate(list(first.values())).tolist()) == list(range(40))
    assert first["importance"].tolist() != list(range(5, 15))  # not the corpus's first block
    for rows in first.values():
        assert rows.tolist() == sorted(rows.tolist())  # corpus order within a split
    again, _ = shards(tmp_path / "again")
    assert np.array_equal(data.load_shard(again, "importance"), data.load_shard(out, "importance"))
    other, _ = shards(tmp_path / "other", seed=1)
    assert not np.array_equal(
        data.load_shard(other, "importance"), data.load_shard(out, "importance")
    )


def test_too_small_a_corpus_is_named(tmp_path):
    with pytest.raises(DataError, match="xa: only 12 sequences"):
        shards(tmp_path, rows=12)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_shards_are_refused(tmp_path, damage):
    out, _ = shards(tmp_path)
    path = out / "train.npy"
    raw = path.read_bytes()
    path.write_bytes(raw[:-7] if damage == "truncate" else raw[:-1] + b"\x7f")
    with pytest.raises(DataError, match=r"train\.npy"):
        data.load_shard(out, "train")


def test_masking_follows_bert(tokenizer):
    spec = data.masking_for(tokenizer, probability=0.15)
    ids = np.random.default_rng(0).integers(4, spec.mask_id, size=(400, 50))
    ids[:, 0], ids[:, -1] = 0, 2
    inputs, labels = data.mask_tokens(ids, spec, np.random.default_rng(1))
    chosen = labels.numpy() != -100
    assert not chosen[:, 0].any() and not chosen[:, -1].any()  # specials are never predicted
    assert chosen.mean() == pytest.approx(0.15 * 48 / 50, abs=0.01)
    masked = inputs.numpy()[chosen] == spec.mask_id
    kept = inputs.numpy()[chosen] == ids[chosen]
    assert masked.mean() == pytest.approx(0.8, abs=0.02)
    assert (kept & ~masked).mean() == pytest.approx(0.1 + 0.1 / len(tokenizer), abs=0.02)
    again, _ = data.mask_tokens(ids, spec, np.random.default_rng(1))
    assert np.array_equal(inputs, again)


def test_shard_batches_are_a_function_of_seed_and_step(tmp_path, tokenizer):
    dirs = {lang: shards(tmp_path, rows=60, lang=lang)[0] for lang in ("xa", "xb")}
    spec = data.masking_for(tokenizer)
    sizes = {"xa": 1000.0, "xb": 10.0}
    first = data.ShardSet(dirs, "train", 0.3, spec, sizes)
    second = data.ShardSet(dirs, "train", 0.3, spec, sizes)
    a, b = first.batch(3, 7, 1, 0, 4), second.batch(3, 7, 1, 0, 4)
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    langs = [first.batch(0, step, 0, 0, 1)[0] for step in range(2000)]
    expected = (1000 / 1010) ** 0.3 / ((1000 / 1010) ** 0.3 + (10 / 1010) ** 0.3)
    assert langs.count("xa") / len(langs) == pytest.approx(expected, abs=0.03)


def corrupt_tokenizer(directory, damage: str):
    tokenizer_json = directory / "tokenizer.json"
    if damage == "missing folder":
        shutil.rmtree(directory)
    elif damage == "missing file":
        tokenizer_json.unlink()
    elif damage == "settings":
        (directory / SETTINGS_FILE).write_text("{")
    elif damage == "truncated":
        tokenizer_json.write_bytes(tokenizer_json.read_bytes()[:500])
    else:  # valid JSON that the tokenizers library (Rust) cannot read
        spec = json.loads(tokenizer_json.read_text())
        spec["model"]["type"] = "Bogus"
        tokenizer_json.write_text(json.dumps(spec))


@pytest.mark.parametrize(
    "damage", ["missing folder", "missing file", "settings", "truncated", "bad model"]
)
def test_a_damaged_tokenizer_is_named(tokenizer_dir, tmp_path, damage):
    directory = tmp_path / "tok"
    shutil.copytree(tokenizer_dir, directory)
    corrupt_tokenizer(directory, damage)
    with pytest.raises(DataError) as info:
        data.load_tokenizer(str(directory))
    message = str(info.value)
    assert message.startswith(f"{directory}: ") and "\n" not in message


def test_a_bert_tokenizer_is_refused_by_the_mlm_stages(tmp_path, tokenizer):
    from transformers import BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ka", "lo"]) + "\n")
    with pytest.raises(DataError, match=r"MLM stages need XLM-R's special tokens.*\[PAD\]"):
        data.masking_for(BertTokenizerFast(vocab_file=str(vocab)))
    assert data.masking_for(tokenizer).mask_id == len(tokenizer) - 1


def test_a_tokenizer_polyprune_did_not_save_loads_as_auto_tokenizer_loads_it(
    tokenizer_dir, tmp_path
):
    from transformers import AutoTokenizer, BertTokenizerFast

    generic = tmp_path / "generic"
    shutil.copytree(tokenizer_dir, generic)
    (generic / SETTINGS_FILE).unlink()
    text = (["alpha beta gamma", "rho"], ["sigma tau", "kappa mu xi"])
    ours, auto = data.load_tokenizer(str(generic)), AutoTokenizer.from_pretrained(str(generic))
    assert type(ours) is type(auto)
    assert ours(*text, return_offsets_mapping=True) == auto(*text, return_offsets_mapping=True)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ka", "lo"]) + "\n")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(str(tmp_path / "bert"))
    assert isinstance(data.load_tokenizer(str(tmp_path / "bert")), BertTokenizerFast)


def test_the_data_preparation_steps_start_without_torch():
    # corpus, tokenizer, shard and prepare_task run before the base model, on its critical path;
    # importing torch costs each of them about 2 s
    code = (
        "import sys\n"
        "from polyprune.data import copy_lines, shard_language, train_tokenizer\n"
        "from polyprune.jobs import job\n"
        "from polyprune.synth import World\n"
        "from polyprune.tasks.pipeline import prepare_task\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
