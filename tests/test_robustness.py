import pytest

from polyprune.robustness import (
    casing,
    char_noise,
    entity_names,
    entity_spans,
    exemplars,
    modal,
    unseen_entities,
)


def records(lang="qaa", n=40):
    words = ["mira", "tolen", "sa", "verek", "pandu", "lo", "kiru"]
    out = []
    for i in range(n):
        tokens = [words[(i + j) % len(words)] for j in range(6)]
        tags = ["O"] * 6
        tokens[1:3], tags[1:3] = [f"Ana{i % 5}", f"Bel{i % 3}"], ["B-PER", "I-PER"]
        tokens[4], tags[4] = f"Rok{i % 4}", "B-LOC"
        out.append({"id": f"{lang}-{i}", "lang": lang, "tokens": tokens, "tags": tags})
    return out


def test_entity_spans_read_bio_as_seqeval_does():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "B-ORG", "I-PER"]
    assert entity_spans(tags) == [
        (0, 2, "PER"),
        (3, 5, "LOC"),
        (5, 6, "LOC"),
        (6, 7, "ORG"),
        (7, 8, "PER"),
    ]


def test_char_noise_is_seeded_keeps_tags_and_edits_about_its_rate():
    data = records() + records("qab")
    noisy = char_noise(data, 0.1, seed=3)
    assert noisy == char_noise(data, 0.1, seed=3)
    assert noisy != char_noise(data, 0.1, seed=4)
    assert [r["tags"] for r in noisy] == [r["tags"] for r in data]
    assert all(
        len(r["tokens"]) == len(o["tokens"]) and all(r["tokens"]) for r, o in zip(noisy, data)
    )
    changed = sum(a != b for r, o in zip(noisy, data) for a, b in zip(r["tokens"], o["tokens"]))
    chars = sum(len(t) for r in data for t in r["tokens"])
    tokens = sum(len(r["tokens"]) for r in data)
    # each character is edited with p = 0.1; a token of mean length L changes with p ~ 1 - 0.9^L
    mean_length = chars / tokens
    assert changed / tokens == pytest.approx(1 - 0.9**mean_length, abs=0.08)
    assert char_noise(data, 0.0, seed=3) == data
    # one language's noise does not depend on the other languages in the set
    assert char_noise(records("qab"), 0.1, seed=3) == noisy[40:]


def test_unseen_entities_replace_every_entity_with_one_training_never_tags():
    train, test = records(n=20), records(n=40)[20:]
    pool = [
        {**r, "tokens": [t.replace("Ana", "Zed").replace("Rok", "Pim") for t in r["tokens"]]}
        for r in records(n=10)
    ]
    seen = entity_names(train)
    assert ("Ana0", "Bel0") in seen and ("Rok0",) in seen
    out = unseen_entities(test, seen, pool, seed=1)
    assert out == unseen_entities(test, seen, pool, seed=1)
    for new, old in zip(out, test):
        old_spans, new_spans = entity_spans(old["tags"]), entity_spans(new["tags"])
        assert [k for _, _, k in new_spans] == [k for _, _, k in old_spans]
        for a, b, _ in new_spans:
            assert tuple(new["tokens"][a:b]) not in seen
        outside = [t for i, t in enumerate(old["tokens"]) if old["tags"][i] == "O"]
        assert [t for i, t in enumerate(new["tokens"]) if new["tags"][i] == "O"] == outside
    # every pool name seen: names with their letters shuffled, still unseen
    shuffled = unseen_entities(test, entity_names(train + pool), pool, seed=1)
    for new, old in zip(shuffled, test):
        spans = entity_spans(new["tags"])
        assert [k for _, _, k in spans] == [k for _, _, k in entity_spans(old["tags"])]
        for a, b, _ in spans:
            name = tuple(new["tokens"][a:b])
            assert name not in entity_names(train + pool)
            assert name[0][0] in "ZBPAR"  # first letters stay
    single = [{**r, "tokens": ["X"] * len(r["tokens"])} for r in pool]
    with pytest.raises(ValueError, match="no unseen PER entity in qaa"):
        unseen_entities(test, entity_names(train + single), single, seed=1)


@pytest.mark.parametrize("how", ["upper", "lower", "title"])
def test_casing_changes_case_only(how):
    data = records(n=5)
    out = casing(data, how)
    for new, old in zip(out, data):
        assert [t.lower() for t in new["tokens"]] == [t.lower() for t in old["tokens"]]
        assert new["tags"] == old["tags"]
    assert any(new != old for new, old in zip(out, data))
    with pytest.raises(ValueError, match="casing 'mixed'"):
        casing(data, "mixed")


def test_exemplars_are_where_the_modal_predictions_differ():
    dense = [
        ["A", "B", "C", ["O", "B-PER"]],
        ["A", "B", "D", ["O", "B-PER"]],
        ["A", "C", "C", ["O", "B-PER"]],
    ]
    sparse = [
        ["A", "C", "C", ["O", "O"]],
        ["B", "C", "C", ["O", "O"]],
        ["A", "B", "D", ["O", "B-PER"]],
    ]
    assert modal(dense) == ["A", "B", "C", ("O", "B-PER")]
    assert modal(sparse) == ["A", "C", "C", ("O", "O")]
    assert exemplars(dense, sparse) == [1, 3]
    assert modal([["x", "y"], ["y", "x"]]) == ["x", "y"]  # a tie goes to the first model
