import random
from collections import Counter

import pytest
import torch

from polyprune.data import load_tokenizer, train_tokenizer
from polyprune.gates import Gates
from polyprune.model import MaskedLM, ModelConfig
from polyprune.prune import gated_model
from polyprune.tasks.finetune import (
    IGNORE,
    FinetuneSettings,
    evaluate,
    finetune,
    length_batches,
    predict,
    score,
    token_rows,
    word_tags,
)
from polyprune.tasks.heads import LanguageCoverageError, Lengths, TaskModel, coverage_problems
from polyprune.tasks.qa import make_windows
from polyprune.tasks.retrieval import retrieval_scores

pytestmark = pytest.mark.usefixtures("one_thread")

SYLLABLES = ["ka", "lo", "mi", "ru", "te", "su", "no", "pa", "vi", "de"]
WORDS = [a + b for a in SYLLABLES for b in SYLLABLES]
PERSONS, PLACES = WORDS[20:30], WORDS[30:40]  # told apart by the first syllable
YES, NO, MARKER = "zum", "pax", "qix"
LENGTHS = Lengths(pair=64, token=64, qa=32, qa_stride=12)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    rng = random.Random(0)
    corpus = tmp_path_factory.mktemp("corpus") / "text.txt"
    lines = [" ".join([*rng.choices(WORDS, k=10), YES, NO, MARKER]) for _ in range(300)]
    corpus.write_text("\n".join(lines) + "\n")
    out = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer([corpus], vocab_size=160, out_dir=out)
    return load_tokenizer(str(out))


def tiny_model(tokenizer, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    cfg = ModelConfig(
        vocab_size=len(tokenizer),
        hidden=32,
        layers=2,
        heads=2,
        ffn=64,
        head_dim=16,
        max_positions=66,
        dropout=dropout,
        attention_dropout=dropout,
    )
    return MaskedLM(cfg)


def settings(**overrides):
    return FinetuneSettings(**{"lr": 3e-3, "epochs": 4, "lengths": LENGTHS, **overrides})


def sentence(rng, n_min=3, n_max=7):
    return rng.choices(WORDS, k=rng.randint(n_min, n_max))


def pair_records(n, lang="qaa", seed=0):
    """Label decided by a word in sentence2: YES -> paraphrase, NO -> different."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        label = rng.choice(["different", "paraphrase"])
        words = sentence(rng)
        words.insert(rng.randint(0, len(words)), YES if label == "paraphrase" else NO)
        records.append(
            {
                "id": f"{lang}-{seed}-{i}",
                "lang": lang,
                "sentence1": " ".join(sentence(rng)),
                "sentence2": " ".join(words),
                "label": label,
            }
        )
    return records


def tag_of(word):
    return "B-PER" if word in PERSONS else "B-LOC" if word in PLACES else "O"


def tag_records(n, seed=0):
    rng = random.Random(seed)
    records = []
    for i in range(n):
        tokens = rng.choices(WORDS[:40], k=rng.randint(3, 9))
        records.append(
            {"id": str(i), "lang": "qaa", "tokens": tokens, "tags": [tag_of(w) for w in tokens]}
        )
    return records


ANSWERS = ["pa", "vi", "de"]  # one token each; words of the contexts never start with them
CONTEXT_WORDS = [w for w in WORDS if not w.startswith(tuple(ANSWERS))]


def qa_records(n, seed=0, lang="qaa"):
    """The answer is the word after MARKER; contexts span several 32-token windows."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        before = rng.choices(CONTEXT_WORDS, k=rng.randint(0, 14))
        after = rng.choices(CONTEXT_WORDS, k=rng.randint(0, 14))
        answer = rng.choice(ANSWERS)
        prefix = " ".join([*before, MARKER]) + " "
        context = prefix + " ".join([answer, *after])
        records.append(
            {
                "id": str(i),
                "lang": lang,
                "context": context,
                "question": " ".join(rng.choices(CONTEXT_WORDS, k=3)),
                "answers": {"text": [answer], "answer_start": [len(prefix)]},
            }
        )
    return records


# ---- sentence pairs -----------------------------------------------------------------------


def test_pair_task_is_learned(tokenizer):
    model = finetune(tiny_model(tokenizer), tokenizer, "pawsx", pair_records(256), settings())
    scores = evaluate(model, tokenizer, {"qaa": pair_records(100, seed=1)}, {})
    assert scores["validation"]["qaa"]["accuracy"] > 85
    assert scores["validation"]["avg"] == scores["validation"]["qaa"]


def test_the_pair_task_is_learned_while_pruned_to_half_its_encoder_weights(tokenizer):
    from polyprune.gmp import CubicSchedule, MagnitudePruner

    model = tiny_model(tokenizer)
    schedule = CubicSchedule(final=0.5, start=4, end=20, every=4)
    pruner = MagnitudePruner(model, schedule, "unstructured", "global")
    task_model = finetune(
        model,
        tokenizer,
        "pawsx",
        pair_records(256),
        settings(),
        hook_for_steps=lambda steps: pruner.step,
    )
    assert pruner.sparsity() == pytest.approx(0.5, abs=1e-3)
    scores = evaluate(task_model, tokenizer, {"qaa": pair_records(100, seed=1)}, {})
    assert scores["validation"]["qaa"]["accuracy"] > 85


def test_seed_fixes_the_result_including_dropout(tokenizer):
    def run(seed):
        s = settings(epochs=1, seed=seed)
        task_model = finetune(
            tiny_model(tokenizer, dropout=0.1), tokenizer, "pawsx", pair_records(64), s
        )
        return torch.cat([p.detach().flatten() for p in task_model.parameters()])

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


# ---- token classification -----------------------------------------------------------------


def test_only_first_subtokens_carry_tags(tokenizer):
    words = ["kalo", "xyzzyq", "mi", "qqvvwwjj"]  # two words split into several sub-tokens
    tags = ["B-PER", "O", "B-LOC", "I-LOC"]
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    rows = token_rows(tokenizer, [{"tokens": words, "tags": tags}], labels, max_length=64)
    n_pieces = list(map(len, tokenizer(words, add_special_tokens=False)["input_ids"]))
    assert n_pieces[1] > 1 and n_pieces[3] > 1
    expected = [IGNORE]
    for tag, n in zip(tags, n_pieces):
        expected += [labels.index(tag)] + [IGNORE] * (n - 1)
    assert rows.targets == [[*expected, IGNORE]]


def test_predictions_map_back_to_words_across_chunks(tokenizer):
    labels = ["O", "B-PER", "B-LOC"]
    record = {"tokens": [WORDS[i % 20] for i in range(50)], "tags": []}
    record["tags"] = [tag_of(w) for w in record["tokens"]]
    rows = token_rows(tokenizer, [record], labels, max_length=16)
    assert len(rows.input_ids) > 3 and all(len(ids) <= 16 for ids in rows.input_ids)
    # Logits that point at the gold tag on first sub-tokens and at "B-LOC" everywhere else.
    logits = []
    for targets in rows.targets:
        row = torch.zeros(len(targets), len(labels))
        for t, target in enumerate(targets):
            row[t, target if target != IGNORE else 2] = 1.0
        logits.append(row)
    assert word_tags(rows, logits, [record], labels) == [record["tags"]]


def test_tagging_toy_reaches_high_f1(tokenizer):
    model = finetune(tiny_model(tokenizer), tokenizer, "panx", tag_records(256), settings())
    records = tag_records(80, seed=1)
    predictions = predict(model, tokenizer, records)
    assert [len(p) for p in predictions] == [len(r["tokens"]) for r in records]
    assert score("panx", "qaa", records, predictions)["f1"] > 85


# ---- extractive QA ------------------------------------------------------------------------


def test_qa_toy_is_learned_over_several_windows(tokenizer):
    train = qa_records(160)
    windows = make_windows(tokenizer, *zip(*((r["question"], r["context"]) for r in train)), 32, 12)
    assert max(Counter(windows.example_index).values()) >= 3
    model = finetune(tiny_model(tokenizer), tokenizer, "squad", train, settings())
    test = qa_records(60, seed=1)
    scores = evaluate(model, tokenizer, {}, {"xquad": {"qaa": test}, "mlqa": {"qaa": test}})
    assert scores["test"]["xquad"]["qaa"]["f1"] > 80
    assert scores["test"]["mlqa"]["avg"] == scores["test"]["xquad"]["avg"]


def test_mlqa_normalises_per_language_and_falls_back_to_squad():
    records = [{"id": "1", "answers": {"text": ["Hund"], "answer_start": [4]}}]
    assert score("mlqa", "de", records, ["der Hund"])["exact_match"] == 100
    assert score("mlqa", "qaa", records, ["der Hund"])["exact_match"] == 0
    assert score("xquad", "de", records, ["der Hund"])["exact_match"] == 0


# ---- per-language gates -------------------------------------------------------------------


def two_language_model(tokenizer):
    """qaa keeps everything; qab drops every head and FFN unit, so its <s> state is constant."""
    base = tiny_model(tokenizer)
    keep = Gates.ones(base.cfg.heads, base.cfg.ffn, None)
    drop = Gates.ones(base.cfg.heads, base.cfg.ffn, None)
    for gate in drop.leaves():
        gate.zero_()
    return gated_model(base, {"qaa": keep, "qab": drop})


def test_every_example_trains_with_its_own_languages_gates(tokenizer):
    model = two_language_model(tokenizer)
    records = pair_records(128, "qaa") + pair_records(128, "qab", seed=2)
    lang_of = {
        tuple(tokenizer(r["sentence1"], r["sentence2"])["input_ids"]): r["lang"] for r in records
    }
    seen, encode = [], model.encode

    def spy(input_ids, attention_mask=None, gate_set=None, **kwargs):
        seen.append((input_ids, attention_mask, gate_set))
        return encode(input_ids, attention_mask, gate_set=gate_set, **kwargs)

    model.encode = spy
    task_model = finetune(model, tokenizer, "pawsx", records, settings(epochs=6))
    assert len(seen) == 6 * 256 // 32
    for input_ids, mask, gate_set in seen:
        langs = [lang_of[tuple(ids[m.bool()].tolist())] for ids, m in zip(input_ids, mask)]
        assert gate_set.tolist() == [["qaa", "qab"].index(lang) for lang in langs]
        assert len(set(langs)) == 2

    test = pair_records(60, "qaa", seed=1)
    same_text = [{**r, "lang": "qab"} for r in test]
    scores = evaluate(task_model, tokenizer, {"qaa": test, "qab": same_text}, {})
    assert scores["validation"]["qaa"]["accuracy"] > 85
    assert len(set(predict(task_model, tokenizer, same_text))) == 1  # qab's <s> is constant


def test_the_pair_head_reads_the_first_token_as_a_full_encoding_gives_it(tokenizer):
    """The last layer computes the <s> token alone for the pair head: same logits and
    gradients as from every position's states, per-language gates included."""
    model = two_language_model(tokenizer)
    task_model = TaskModel(model, "xnli", "pair", ["a", "b", "c"], LENGTHS, seed=0)
    records = pair_records(4, "qaa") + pair_records(4, "qab", seed=2)
    batch = tokenizer(
        [r["sentence1"] for r in records],
        [r["sentence2"] for r in records],
        padding=True,
    )
    gate_set = torch.tensor([0] * 4 + [1] * 4)
    ids, mask = torch.tensor(batch["input_ids"]), torch.tensor(batch["attention_mask"])
    params = [p for name, p in task_model.named_parameters() if ".head." not in name]

    def logits_and_grads(logits):
        return logits.detach(), torch.autograd.grad(logits.square().sum(), params)

    full_states = model.encode(ids, mask, gate_set=gate_set)
    full = logits_and_grads(task_model.head(full_states))
    kept = logits_and_grads(task_model(ids, mask, gate_set=gate_set))
    assert torch.allclose(kept[0], full[0], atol=1e-6)
    for a, b in zip(kept[1], full[1]):
        assert torch.allclose(a, b, atol=1e-6)


def test_a_language_without_gates_is_an_error(tokenizer):
    model = two_language_model(tokenizer)
    assert coverage_problems(model, ["qaa", "qab"]) == []
    assert "qzz" in coverage_problems(model, ["qaa", "qzz"])[0]
    assert coverage_problems(tiny_model(tokenizer), ["qzz"]) == []
    with pytest.raises(LanguageCoverageError, match="qzz"):
        finetune(model, tokenizer, "pawsx", pair_records(8, "qzz"), settings())


# ---- retrieval ----------------------------------------------------------------------------


def tatoeba_records(shuffle: bool):
    rng = random.Random(3)
    sources = [" ".join(sentence(rng, 5, 9)) for _ in range(40)]
    targets = rng.sample(sources, len(sources)) if shuffle else list(sources)
    return [
        {"id": str(i), "lang": "qaa", "source": s, "target": t}
        for i, (s, t) in enumerate(zip(sources, targets))
    ]


def bucc_records(shuffle: bool):
    rows = tatoeba_records(shuffle=False)
    gold = [f"t{i}" for i in range(len(rows))]
    if shuffle:
        random.Random(4).shuffle(gold)
    sources = [
        {"id": f"s{i}", "lang": "qaa", "side": "source", "text": r["source"], "gold": g}
        for i, (r, g) in enumerate(zip(rows, gold))
    ]
    targets = [
        {"id": f"t{i}", "lang": "qaa", "side": "target", "text": r["target"], "gold": None}
        for i, r in enumerate(rows)
    ]
    return sources + targets


@pytest.mark.parametrize(
    "task, records, metric",
    [("tatoeba", tatoeba_records, "accuracy"), ("bucc", bucc_records, "f1")],
)
def test_retrieval_finds_copies_and_not_shuffles(tokenizer, task, records, metric):
    model = tiny_model(tokenizer)

    def scores(shuffle):
        by_lang = {"qaa": records(shuffle)}
        return retrieval_scores(model, tokenizer, task, by_lang, 1, 16, source_lang="qal")

    copied, shuffled = scores(False), scores(True)
    assert copied["qaa"][metric] == pytest.approx(100)
    assert copied["avg"][metric] == copied["qaa"][metric]
    assert shuffled["qaa"][metric] < 50


def test_retrieval_runs_each_side_with_its_languages_gates(tokenizer):
    model = two_language_model(tokenizer)
    gate_sets, encode = [], model.encode

    def spy(input_ids, attention_mask=None, gate_set=None, **kwargs):
        gate_sets.extend(gate_set.tolist())
        return encode(input_ids, attention_mask, gate_set=gate_set, **kwargs)

    model.encode = spy
    by_lang = {"qab": tatoeba_records(shuffle=False)}
    retrieval_scores(model, tokenizer, "tatoeba", by_lang, 2, 16, source_lang="qaa")
    assert gate_sets == [1] * 40 + [0] * 40  # the qab sources, then their qaa targets
    same = retrieval_scores(model, tokenizer, "tatoeba", by_lang, 2, 16, source_lang="qab")
    assert same["qab"]["accuracy"] == pytest.approx(100)
    with pytest.raises(LanguageCoverageError, match="qzz"):
        retrieval_scores(model, tokenizer, "tatoeba", by_lang, 2, 16, source_lang="qzz")


def test_length_batches_cover_every_row_once_in_similar_lengths():
    rng = random.Random(0)
    lengths = [rng.randint(3, 60) for _ in range(203)]
    batches = length_batches(lengths, 16, 4, torch.Generator().manual_seed(0))
    assert sorted(i for b in batches for i in b) == list(range(203))
    assert len(batches) == -(-203 // 16)  # as many steps as plain random batches
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    plain = length_batches(lengths, 16, 1, torch.Generator().manual_seed(0))
    assert sorted(i for b in plain for i in b) == list(range(203))
    assert spread < sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in plain) / 2
    again = length_batches(lengths, 16, 4, torch.Generator().manual_seed(0))
    assert again == batches


def test_train_share_keeps_the_source_and_a_share_of_each_translation(tmp_path):
    import json

    import yaml

    from polyprune.config import ROOT
    from polyprune.tasks.pipeline import prepare_task, read_records

    world = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["world"]
    tasks = {"source": "synthetic", "sizes": {"xnli": {"train": 8}}, "train_share": {"xnli": 0.5}}
    langs = list(world["languages"])
    prepare_task("xnli", tasks, world, tmp_path / "xnli", {"run": "t", "seed": 0}, langs)
    manifest = json.loads((tmp_path / "xnli" / "manifest.json").read_text())
    assert manifest["train_share"] == 0.5
    assert manifest["counts"]["train"] == {lang: 8 if lang == "qaa" else 4 for lang in langs}
    full = tmp_path / "full"
    prepare_task("xnli", {**tasks, "train_share": {}}, world, full, {"run": "t", "seed": 0}, langs)
    kept = read_records(tmp_path / "xnli", "train", "qab")
    assert kept == read_records(full, "train", "qab")[:4]


def test_bert_segments_reach_the_encoder_in_training_and_prediction(tmp_path):
    from transformers import BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    bert_tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    cfg = ModelConfig(
        vocab_size=len(bert_tokenizer),
        hidden=32,
        layers=1,
        heads=2,
        ffn=32,
        head_dim=16,
        max_positions=64,
        type_vocab=2,
        pad_id=0,
        layout="bert",
    )
    model, seen = MaskedLM(cfg), []
    encode = model.encode

    def spy(input_ids, attention_mask=None, token_types=None, **kwargs):
        seen.append((attention_mask, token_types))
        return encode(input_ids, attention_mask, token_types=token_types, **kwargs)

    model.encode = spy
    records = pair_records(8)
    task_model = finetune(model, bert_tokenizer, "pawsx", records, settings(epochs=1))
    predict(task_model, bert_tokenizer, records)
    assert seen
    for mask, types in seen:
        for row_mask, row_types in zip(mask.tolist(), types.tolist()):
            n = sum(row_mask)
            second = row_types.index(1)  # [CLS] A [SEP] are segment 0, B [SEP] segment 1
            assert row_types[:n] == [0] * second + [1] * (n - second)
            assert row_types[n:] == [0] * (len(row_types) - n)

    windows = make_windows(bert_tokenizer, ["kaka lolo"], [" ".join(WORDS[:30])], 16, 4)
    assert len(windows) > 1
    for types, offsets in zip(windows.token_types, windows.context_offsets):
        assert [t == 1 for t in types[:-1]] == [o is not None for o in offsets[:-1]]
