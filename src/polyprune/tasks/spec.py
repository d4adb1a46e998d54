"""The nine tasks: types, labels, which training set serves which evaluation task, and how a
grid point is judged. Kept free of torch (the Snakefile reads it)."""

MODES = ("zero-shot", "translate-train-all")
SPLITS = ("train", "validation", "test")

TASK_TYPES = {
    "xnli": "pair",
    "pawsx": "pair",
    "udpos": "token",
    "panx": "token",
    "squad": "qa",
    "xquad": "qa",
    "mlqa": "qa",
    "tydiqa": "qa",
    "bucc": "mining",
    "tatoeba": "retrieval",
}

# fmt: off
LABELS = {
    "xnli": ("entailment", "neutral", "contradiction"),
    "pawsx": ("different", "paraphrase"),
    "udpos": ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
              "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"),
    "panx": ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"),
}
# fmt: on

# evaluation task -> the training set its model is fine-tuned on (XQuAD and MLQA: SQuAD v1.1)
TRAINED_ON = {
    "xnli": "xnli",
    "pawsx": "pawsx",
    "udpos": "udpos",
    "panx": "panx",
    "xquad": "squad",
    "mlqa": "squad",
    "tydiqa": "tydiqa",
}
RETRIEVAL_TASKS = ("bucc", "tatoeba")
EVALUATION_TASKS = (*TRAINED_ON, *RETRIEVAL_TASKS)

# the score that selects a grid point and fills Table 1's main column for each task type
PRIMARY_METRIC = {
    "pair": "accuracy",
    "token": "f1",
    "qa": "f1",
    "mining": "f1",
    "retrieval": "accuracy",
}


def training_sets(tasks) -> list[str]:
    """The training sets the evaluation `tasks` need, in a stable order."""
    return list(dict.fromkeys(TRAINED_ON[t] for t in tasks if t in TRAINED_ON))


def evaluated_by(train_set: str, tasks) -> list[str]:
    """The evaluation tasks among `tasks` that a model trained on `train_set` is tested on."""
    return [t for t in tasks if TRAINED_ON.get(t) == train_set]
