"""A saved fast tokenizer run by the `tokenizers` library alone.

transformers' fast tokenizers are a thin layer over a `tokenizers.Tokenizer` (tokenizer.json),
but importing transformers costs 1-2 s, and most polyprune jobs need nothing else from it. When
polyprune saves a tokenizer (`save_tokenizer`), it records beside tokenizer.json the few settings
that transformers' layer adds (SETTINGS_FILE); `FastTokenizer` reads both and answers the calls
polyprune makes exactly as transformers' tokenizer would (tests/test_fast_tokenizer.py checks it
call by call against transformers).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

SETTINGS_FILE = "polyprune_tokenizer.json"
SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "pad_token", "mask_token")


def save_tokenizer(tok, out_dir) -> None:
    """`tok` (a transformers fast tokenizer) saved with the settings FastTokenizer reads."""
    tok.save_pretrained(str(out_dir))
    settings = {
        "model_input_names": list(tok.model_input_names),
        "padding_side": tok.padding_side,
        "truncation_side": tok.truncation_side,
        "pad_token_type_id": tok.pad_token_type_id,
        "special_tokens": {name: getattr(tok, name) for name in SPECIAL_TOKENS},
    }
    (Path(out_dir) / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")


def saved_by_polyprune(path) -> bool:
    return (Path(path) / SETTINGS_FILE).is_file()


class Encoded(dict):
    """A batch's fields (input_ids, attention_mask, ...), as transformers' BatchEncoding."""

    def __init__(self, fields: dict, encodings: list):
        super().__init__(fields)
        self._encodings = encodings

    def word_ids(self, row: int) -> list[int | None]:
        return self._encodings[row].word_ids

    def sequence_ids(self, row: int) -> list[int | None]:
        return self._encodings[row].sequence_ids


class FastTokenizer:
    is_fast = True

    def __init__(self, path):
        from tokenizers import Tokenizer

        path = Path(path)
        settings = json.loads((path / SETTINGS_FILE).read_text())
        self._backend = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._backend.no_truncation()
        self._backend.no_padding()
        self.model_input_names = settings["model_input_names"]
        self.padding_side = settings["padding_side"]
        self.truncation_side = settings["truncation_side"]
        self.pad_token_type_id = settings["pad_token_type_id"]
        for name, token in settings["special_tokens"].items():
            token_id = None if token is None else self._backend.token_to_id(token)
            setattr(self, name, token)
            setattr(self, f"{name}_id", token_id)

    def __len__(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str | None]:
        return [self._backend.id_to_token(i) for i in ids]

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._backend.num_special_tokens_to_add(pair)

    def __call__(
        self,
        text,
        text_pair=None,
        *,
        add_special_tokens: bool = True,
        truncation: bool | str = False,
        max_length: int | None = None,
        stride: int = 0,
        padding: bool = False,
        is_split_into_words: bool = False,
        return_overflowing_tokens: bool = False,
        return_offsets_mapping: bool = False,
    ) -> Encoded:
        """One text (or word list, or pair) or a batch of them, encoded as transformers does."""
        single = isinstance(text, str) or (
            is_split_into_words and not (text and isinstance(text[0], list | tuple))
        )
        if single:
            text, text_pair = [text], None if text_pair is None else [text_pair]
        self._configure(truncation, max_length, stride, padding)
        batch = list(text) if text_pair is None else list(zip(text, text_pair, strict=True))
        per_input = [
            [encoding, *(encoding.overflowing if return_overflowing_tokens else [])]
            for encoding in self._backend.encode_batch(
                batch, is_pretokenized=is_split_into_words, add_special_tokens=add_special_tokens
            )
        ]
        encodings = [e for group in per_input for e in group]
        fields = {"input_ids": [e.ids for e in encodings]}
        if "token_type_ids" in self.model_input_names:
            fields["token_type_ids"] = [e.type_ids for e in encodings]
        if "attention_mask" in self.model_input_names:
            fields["attention_mask"] = [e.attention_mask for e in encodings]
        if return_offsets_mapping:
            fields["offset_mapping"] = [e.offsets for e in encodings]
        if return_overflowing_tokens:
            fields["overflow_to_sample_mapping"] = [
                i for i, group in enumerate(per_input) for _ in group
            ]
        elif single:
            fields = {name: rows[0] for name, rows in fields.items()}
        return Encoded(fields, encodings)

    def _configure(self, truncation, max_length, stride, padding) -> None:
        if truncation:
            strategy = "longest_first" if truncation is True else truncation
            self._backend.enable_truncation(
                max_length, stride=stride, strategy=strategy, direction=self.truncation_side
            )
        else:
            self._backend.no_truncation()
        if padding:
            self._backend.enable_padding(
                direction=self.padding_side,
                pad_id=self.pad_token_id,
                pad_token=self.pad_token,
                pad_type_id=self.pad_token_type_id,
            )
        else:
            self._backend.no_padding()
