import itertools

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from polyprune.data import xlmr_layout
from polyprune.tasks.qa import NO_ANSWER, decode_best_spans, make_windows, window_labels

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids 0-3, then the mask


def xlmr_style(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return xlmr_layout(tokenizer)


def word_tokenizer(texts) -> PreTrainedTokenizerFast:
    words = sorted({word for text in texts for word in text.split()})
    vocab = {token: i for i, token in enumerate(SPECIALS + words)}
    return xlmr_style(Tokenizer(models.WordLevel(vocab, unk_token="<unk>")))


def bpe_tokenizer(texts) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=80, special_tokens=SPECIALS, show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return xlmr_style(tokenizer)


# 30 context words t00..t29; the question takes 3 tokens, the template 4, so max_length 15
# leaves 8 context tokens per window; stride 3: window w holds t[5w] .. t[5w+7].
CONTEXT = " ".join(f"t{i:02d}" for i in range(30))
QUESTION = "where is it"
TOKENIZER = word_tokenizer([CONTEXT, QUESTION])
MAX_LENGTH, STRIDE = 15, 3


def answer(first: int, last: int) -> dict:
    """The answer spanning words t[first] .. t[last] of CONTEXT."""
    text = " ".join(f"t{i:02d}" for i in range(first, last + 1))
    return {"text": [text], "answer_start": [CONTEXT.index(text)]}


def windows_of(n_examples: int = 1):
    questions, contexts = [QUESTION] * n_examples, [CONTEXT] * n_examples
    return make_windows(TOKENIZER, questions, contexts, MAX_LENGTH, STRIDE)


def words_of(window_offsets) -> list[str]:
    return [CONTEXT[start:end] for start, end in filter(None, window_offsets)]


def test_windows_follow_the_xlmr_pair_template():
    windows = windows_of()
    first = windows.input_ids[0]
    question_ids = TOKENIZER(QUESTION, add_special_tokens=False)["input_ids"]
    assert first[:6] == [0, *question_ids, 2, 2]
    assert first[-1] == 2
    assert len(first) == MAX_LENGTH
    assert windows.attention_mask[0] == [1] * MAX_LENGTH
    assert windows.context_offsets[0][:6] == [None] * 6
    assert windows.context_offsets[0][-1] is None


def test_windows_cover_the_context_with_overlap_of_stride():
    windows = windows_of(2)
    assert len(windows) == 12
    assert windows.example_index == [0] * 6 + [1] * 6
    words = [words_of(offsets) for offsets in windows.context_offsets[:6]]
    assert [w[0] for w in words] == ["t00", "t05", "t10", "t15", "t20", "t25"]
    assert words[-1] == ["t25", "t26", "t27", "t28", "t29"]
    for current, following in itertools.pairwise(words):
        assert current[-STRIDE:] == following[:STRIDE]


def test_windows_fail_clearly_without_room_for_the_stride():
    with pytest.raises(ValueError, match="stride"):
        make_windows(TOKENIZER, [QUESTION], [CONTEXT], max_length=10, stride=3)


def labelled_words(windows, answers) -> list[list[str] | None]:
    """Per window: the context words between the labelled tokens, None for NO_ANSWER."""
    starts, ends = window_labels(windows, answers)
    out = []
    for offsets, start, end in zip(windows.context_offsets, starts, ends, strict=True):
        assert (start == NO_ANSWER) == (end == NO_ANSWER)
        out.append(None if start == NO_ANSWER else words_of(offsets[start : end + 1]))
    return out


def test_an_answer_across_a_window_boundary_is_labelled_only_where_whole():
    # t06..t09: window 0 (t00-t07) cuts it, window 1 (t05-t12) holds it, others miss it
    labels = labelled_words(windows_of(), [answer(6, 9)])
    assert labels == [None, ["t06", "t07", "t08", "t09"], None, None, None, None]


def test_an_answer_in_the_overlap_is_labelled_in_both_windows():
    labels = labelled_words(windows_of(), [answer(10, 12)])
    assert labels == [None, ["t10", "t11", "t12"], ["t10", "t11", "t12"], None, None, None]


def test_an_answer_in_the_last_window_only():
    starts, ends = window_labels(windows_of(), [answer(28, 29)])
    assert starts[:5] == ends[:5] == [NO_ANSWER] * 5
    # last window: <s> q q q </s> </s> t25 t26 t27 t28 t29 </s>
    assert (starts[5], ends[5]) == (9, 10)


def logits_from_labels(windows, starts, ends, width):
    """Logits peaking at the labels, padded to `width` with a decoy score on padding."""
    start_logits, end_logits = [], []
    for ids, start, end in zip(windows.input_ids, starts, ends, strict=True):
        s, e = [0.0] * width, [0.0] * width
        s[start] = e[end] = 10.0  # NO_ANSWER windows peak on <s>, which is no context token
        s[len(ids) :] = e[len(ids) :] = [50.0] * (width - len(ids))
        start_logits.append(s)
        end_logits.append(e)
    return start_logits, end_logits


def test_labels_decode_back_to_the_gold_answers():
    windows = windows_of(3)
    answers = [answer(6, 9), answer(28, 29), answer(0, 0)]
    starts, ends = window_labels(windows, answers)
    start_logits, end_logits = logits_from_labels(windows, starts, ends, MAX_LENGTH + 5)
    predicted = decode_best_spans(windows, start_logits, end_logits, [CONTEXT] * 3)
    assert predicted == [a["text"][0] for a in answers]


def test_a_span_never_joins_a_start_and_an_end_from_different_windows():
    windows = windows_of()
    start_logits = [[0.0] * MAX_LENGTH for _ in range(len(windows))]
    end_logits = [[0.0] * MAX_LENGTH for _ in range(len(windows))]
    start_logits[0][12], end_logits[0][13] = 10.0, 2.0  # window 0: t06 .. t07, score 12
    start_logits[1][7], end_logits[1][10] = 1.0, 10.0  # window 1: t06 .. t09, score 11
    predicted = decode_best_spans(windows, start_logits, end_logits, [CONTEXT])
    assert predicted == ["t06 t07"]  # not t06 (window 0) .. t09 (window 1), which scores 20


def one_window_decode(start_at: dict, end_at: dict, **options) -> str:
    windows = make_windows(TOKENIZER, [QUESTION], ["t00 t01 t02 t03 t04"], MAX_LENGTH, STRIDE)
    assert len(windows) == 1  # context tokens at positions 6-10
    start_logits, end_logits = [0.0] * MAX_LENGTH, [0.0] * MAX_LENGTH
    for position, logit in start_at.items():
        start_logits[position] = logit
    for position, logit in end_at.items():
        end_logits[position] = logit
    return decode_best_spans(
        windows, [start_logits], [end_logits], ["t00 t01 t02 t03 t04"], **options
    )[0]


def test_decoding_skips_question_tokens_reversed_and_overlong_spans():
    # question tokens (1-3) score highest but are no context
    assert one_window_decode({1: 99.0, 7: 5.0}, {3: 99.0, 8: 5.0}) == "t01 t02"
    # end before start is no span: t03..t01 scores 20 but the best valid is t03..t03
    assert one_window_decode({9: 10.0}, {7: 10.0, 9: 1.0}) == "t03"
    # t00..t04 scores 20 but is 5 tokens long; within 2 tokens t03..t04 scores 14
    assert one_window_decode({6: 10.0, 9: 4.0}, {10: 10.0}) == "t00 t01 t02 t03 t04"
    assert one_window_decode({6: 10.0, 9: 4.0}, {10: 10.0}, max_answer_tokens=2) == "t03 t04"


def test_decoding_without_any_valid_span_gives_an_empty_answer():
    # with n_best=1 the only start candidate is a question token
    assert one_window_decode({2: 9.0}, {8: 9.0}, n_best=1) == ""


def test_round_trip_with_subword_tokens():
    contexts = [
        "The Rhine flows through Basel, Strasbourg and Cologne before reaching Rotterdam.",
        "Marie Curie won two Nobel prizes; the second, in 1911, was for chemistry.",
    ]
    questions = ["Which river flows through Basel?", "When did she win the second prize?"]
    answers = [
        {"text": ["Strasbourg and Cologne"], "answer_start": [contexts[0].index("Strasbourg")]},
        {"text": ["1911"], "answer_start": [contexts[1].index("1911")]},
    ]
    tokenizer = bpe_tokenizer(contexts + questions)
    windows = make_windows(tokenizer, questions, contexts, max_length=40, stride=8)
    assert len(windows) > len(contexts)  # long contexts split into several windows
    assert any(  # words split into several subword tokens
        len(tokenizer.tokenize(word)) > 1 for word in contexts[0].split()
    )
    starts, ends = window_labels(windows, answers)
    assert any(start == NO_ANSWER for start in starts)
    start_logits, end_logits = logits_from_labels(windows, starts, ends, 40)
    predicted = decode_best_spans(windows, start_logits, end_logits, contexts)
    assert predicted == ["Strasbourg and Cologne", "1911"]
