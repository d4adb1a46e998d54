import math
import random
import warnings

import numpy as np
import pytest
import torch
from seqeval.metrics import f1_score as seqeval_reference_f1

from polyprune.tasks.metrics import (
    accuracy,
    bucc_f1,
    mean_pool,
    mine_pairs,
    mlqa_scores,
    seqeval_f1,
    squad_scores,
    tatoeba_accuracy,
)


def reference_f1(predictions, references):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on tags without B-/I- and on 0/0
        return 100 * seqeval_reference_f1(references, predictions)


# --- accuracy -------------------------------------------------------------------------------


def test_accuracy_is_a_percentage():
    assert accuracy(["a", "b", "c", "d"], ["a", "b", "x", "d"]) == 75.0


def test_accuracy_rejects_mismatched_and_empty_inputs():
    with pytest.raises(ValueError):
        accuracy(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        accuracy([], [])


# --- seqeval --------------------------------------------------------------------------------

HAND_MADE = [
    # (predictions, references, F1 worked out by hand)
    # one of two entities right
    ([["B-PER", "I-PER", "O", "B-ORG"]], [["B-PER", "I-PER", "O", "B-LOC"]], 50.0),
    # conlleval: I- without B- opens an entity
    ([["I-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O"]], 100.0),
    # a type change inside a chunk splits it: gold PER(0) LOC(1), predicted PER(0-1)
    ([["B-PER", "I-PER"]], [["B-PER", "I-LOC"]], 0.0),
    # B- after B- starts a new entity: predicted PER(0) PER(1), gold PER(0-1)
    ([["B-PER", "B-PER"]], [["B-PER", "I-PER"]], 0.0),
    # entities stop at sentence ends
    ([["B-PER"], ["I-PER"]], [["B-PER"], ["B-PER"]], 100.0),
    # E- closes and S- is a single-token entity: gold LOC(0) PER(1-2), predicted LOC(0) PER(1)
    ([["S-LOC", "B-PER", "O"]], [["S-LOC", "B-PER", "E-PER"]], 50.0),
    # POS tags: "NOUN" is chunk tag N of type OUN; equal neighbours merge, so gold is
    # NOUN(0-1) VERB(2) and predicted NOUN(0) VERB(1-2): nothing matches
    ([["NOUN", "VERB", "VERB"]], [["NOUN", "NOUN", "VERB"]], 0.0),
    ([["NOUN", "VERB", "ADJ"]], [["NOUN", "VERB", "ADJ"]], 100.0),
    # no entities anywhere: 0 (seqeval's zero_division)
    ([["O", "O"]], [["O", "O"]], 0.0),
]


@pytest.mark.parametrize(("predictions", "references", "expected"), HAND_MADE)
def test_seqeval_f1_on_hand_made_cases(predictions, references, expected):
    assert seqeval_f1(predictions, references) == pytest.approx(expected)
    assert seqeval_f1(predictions, references) == pytest.approx(
        reference_f1(predictions, references)
    )


TAG_POOL = [
    *["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-PER", "S-LOC", "E-LOC", "S-PER"],
    *["NOUN", "VERB", "PROPN", "PRON", "SCONJ", "CCONJ", "SYM", "X", "ADJ", "ADP", "PUNCT"],
    *["INTJ", "I", "B", "E", "S", ".", "B-", "I-X-Y", "Ox"],
]


def test_seqeval_f1_matches_seqeval_on_random_corpora():
    rng = random.Random(0)
    for _ in range(1500):
        tags = rng.sample(TAG_POOL, rng.randint(1, 6))
        references = [
            [rng.choice(tags) for _ in range(rng.randint(0, 8))] for _ in range(rng.randint(1, 4))
        ]
        predictions = [
            [rng.choice(tags) if rng.random() < 0.5 else t for t in s] for s in references
        ]
        assert seqeval_f1(predictions, references) == pytest.approx(
            reference_f1(predictions, references), abs=1e-9
        ), (predictions, references)


def test_seqeval_f1_rejects_sentences_of_different_lengths():
    with pytest.raises(ValueError):
        seqeval_f1([["O", "O"]], [["O"]])


# --- SQuAD v1.1 -----------------------------------------------------------------------------


def test_squad_normalisation_ignores_case_punctuation_articles_and_whitespace():
    references = {
        "q1": ["Eiffel Tower"],
        "q2": ["an apple"],
        "q3": ["New  York"],
        "q4": ["another day"],
    }
    predictions = {
        "q1": "The  eiffel tower!",
        "q2": "Apple.",
        "q3": "new york",
        "q4": "day",  # "an" inside "another" is no article: gold stays two tokens
    }
    scores = squad_scores(predictions, references)
    assert scores["exact_match"] == pytest.approx(75.0)
    assert scores["f1"] == pytest.approx((1 + 1 + 1 + 2 / 3) / 4 * 100)


def test_squad_f1_is_token_overlap_and_max_over_gold_answers():
    # "the big red dog" -> big red dog; gold "red dog": precision 2/3, recall 1, F1 0.8
    assert squad_scores({"q": "the big red dog"}, {"q": ["red dog"]})["f1"] == pytest.approx(80.0)
    scores = squad_scores({"q": "red dog"}, {"q": ["a cat", "Red dog."]})
    assert scores == pytest.approx({"exact_match": 100.0, "f1": 100.0})


def test_squad_counts_unanswered_questions_as_zero():
    scores = squad_scores({"q1": "Paris"}, {"q1": ["Paris"], "q2": ["Rome"]})
    assert scores == pytest.approx({"exact_match": 50.0, "f1": 50.0})


def test_squad_keeps_non_ascii_punctuation():
    scores = squad_scores({"q": "«Paris»"}, {"q": ["Paris"]})
    assert scores["exact_match"] == 0.0


# --- MLQA -----------------------------------------------------------------------------------


def em(prediction, gold, lang):
    return mlqa_scores({"q": prediction}, {"q": [gold]}, lang)["exact_match"]


def f1(prediction, gold, lang):
    return mlqa_scores({"q": prediction}, {"q": [gold]}, lang)["f1"]


@pytest.mark.parametrize(
    ("prediction", "gold", "lang"),
    [
        ("the cat", "Cat", "en"),
        ("los gatos", "gatos", "es"),
        ("El Gato", "gato", "es"),
        ("der Hund", "Hund", "de"),
        ("eines Hundes", "hundes", "de"),
        ("của Hà Nội", "Hà Nội", "vi"),
        ("الكتاب", "كتاب", "ar"),  # every "ال" goes, even inside a word
        ("«Paris»", "Paris", "es"),  # Unicode punctuation goes
        ("北京，大学", "北京大学", "zh"),
    ],
)
def test_mlqa_language_specific_normalisation_matches(prediction, gold, lang):
    assert em(prediction, gold, lang) == 100.0


def test_mlqa_articles_belong_to_their_language():
    assert em("the cat", "cat", "hi") == 0.0  # Hindi: no articles removed
    assert em("la casa", "casa", "en") == 0.0
    assert em("die Katze", "Katze", "es") == 0.0


def test_mlqa_segments_chinese_characters():
    # 北 京 大 学 vs 北 京: precision 1/2, recall 1
    assert f1("北京大学", "北京", "zh") == pytest.approx(200 / 3)
    # Latin runs stay whole words between CJK characters: iphone 手 机 vs iphone
    assert f1("iPhone手机", "iphone", "zh") == pytest.approx(50.0)
    # without zh segmentation the whole string is one token
    assert f1("北京大学", "北京", "en") == 0.0


def test_mlqa_rejects_unknown_languages():
    with pytest.raises(ValueError):
        mlqa_scores({"q": "x"}, {"q": ["x"]}, "fr")


# --- retrieval ------------------------------------------------------------------------------


def test_mean_pool_averages_attended_positions():
    hidden = torch.tensor(
        [[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]], [[5.0, 6.0], [9.0, 9.0], [9.0, 9.0]]]
    )
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert torch.equal(mean_pool(hidden, mask), torch.tensor([[2.0, 3.0], [5.0, 6.0]]))


def hand_made_mining_case():
    """Sources are e1, e2, e3; target j's first three coordinates are its cosines with them.

    cosines     y0    y1    y2    yH
        x0     .90   .20   .10   .50
        x1     .15   .70   .20   .75
        x2     .10   .10   .80   .35

    yH is a hub, near every source; by raw cosine x1 would pick it (.75 > .70).
    """
    cosines = np.array([[0.9, 0.2, 0.1, 0.5], [0.15, 0.7, 0.2, 0.75], [0.1, 0.1, 0.8, 0.35]])
    rest = np.sqrt(1 - (cosines**2).sum(axis=0))
    targets = np.concatenate([cosines.T, rest[:, None]], axis=1)
    sources = np.eye(3, 4) * np.array([[3.0], [1.0], [0.5]])  # lengths must not matter
    return sources, targets


def test_mine_pairs_ratio_margin_worked_by_hand():
    # k=2 neighbourhood means: sources x0 (.9+.5)/2=.7, x1 (.75+.7)/2=.725, x2 (.8+.35)/2=.575;
    # targets y0 (.9+.15)/2=.525, y1 (.7+.2)/2=.45, y2 (.8+.2)/2=.5, yH (.75+.5)/2=.625.
    # margin(x, y) = cos / ((mean x + mean y) / 2):
    #   x1-y1 = .7/.5875 = 1.1915 beats x1-yH = .75/.675 = 1.1111: the hub is penalised;
    #   x0-y0 = .9/.6125 = 1.4694, x2-y2 = .8/.5375 = 1.4884.
    # Backward, yH's best is x1 (1.1111), but x1 is taken by the better x1-y1.
    sources, targets = hand_made_mining_case()
    pairs = mine_pairs(sources, targets, k=2)
    assert [(s, t) for s, t, _ in pairs] == [(2, 2), (0, 0), (1, 1)]
    assert [score for _, _, score in pairs] == pytest.approx(
        [0.8 / 0.5375, 0.9 / 0.6125, 0.7 / 0.5875]
    )


def test_mine_pairs_accepts_tensors_and_larger_k():
    sources, targets = hand_made_mining_case()
    pairs = mine_pairs(torch.from_numpy(sources), torch.from_numpy(targets))  # k=4: all targets
    assert sorted((s, t) for s, t, _ in pairs) == [(0, 0), (1, 1), (2, 2)]


def test_bucc_f1_picks_the_threshold_that_maximises_f1_by_hand():
    # ranked: a+ b- c+ d- e+ g- h-, 4 gold pairs (f never mined)
    # prefix F1: 1 -> .4, 2 -> 1/3, 3 -> 4/7, 4 -> .5, 5 -> P 3/5 R 3/4 = 2/3, 6 -> .6, 7 -> 6/11
    candidates = [
        ("a", "A", 1.5),
        ("b", "B", 1.4),
        ("c", "C", 1.3),
        ("d", "D", 1.2),
        ("e", "E", 1.1),
        ("g", "G", 1.0),
        ("h", "H", 0.9),
    ]
    gold = [("a", "A"), ("c", "C"), ("e", "E"), ("f", "F")]
    result = bucc_f1(candidates, gold)
    assert result == pytest.approx(
        {"precision": 60.0, "recall": 75.0, "f1": 200 / 3, "threshold": 1.05}
    )


def test_bucc_f1_never_splits_tied_scores_and_keeps_best_duplicate():
    # a+ and b- tie: the cut after a alone is not possible; c- listed twice keeps 0.5
    candidates = [("a", "A", 2.0), ("b", "B", 2.0), ("c", "C", 0.1), ("c", "C", 0.5)]
    result = bucc_f1(candidates, [("a", "A")])
    assert result == pytest.approx(
        {"precision": 50.0, "recall": 100.0, "f1": 200 / 3, "threshold": 1.25}
    )


def test_bucc_f1_on_mined_pairs_and_without_any_gold_hit():
    sources, targets = hand_made_mining_case()
    result = bucc_f1(mine_pairs(sources, targets, k=2), [(0, 0), (1, 1), (2, 2)])
    assert result["f1"] == pytest.approx(100.0)
    assert result["threshold"] == pytest.approx(0.7 / 0.5875)
    assert bucc_f1([("a", "B", 1.0)], [("a", "A")]) == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "threshold": 0.0,
    }


def test_tatoeba_accuracy_queries_with_the_target_side():
    # target 1 lies nearer source 0 than source 1: 2 of 3 targets find their translation.
    # (From the source side all 3 would: source 1 = e2 is nearest target 1.)
    source = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    target = torch.tensor([[2.0, 0, 0], [1.0, 0.1, 0], [0, 0, 5.0]])
    assert tatoeba_accuracy(source, target) == pytest.approx(200 / 3)
    assert tatoeba_accuracy(target.numpy(), source.numpy()) == pytest.approx(100.0)
    assert math.isclose(tatoeba_accuracy(source, source), 100.0)
