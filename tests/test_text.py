"""steerlab.text: padding and collation (templating and encoding are covered by the
training tests)."""

from __future__ import annotations

import pytest
import torch

from steerlab.models.tiny import tiny_tokenizer
from steerlab.text import (
    IGNORE,
    Encoded,
    collate,
    collate_inputs,
    pad_ids,
    pad_rows,
    pad_token_id,
)


def test_pad_rows_right_and_left():
    right = pad_rows([[1, 2, 3], [4]], 0)
    left = pad_rows([[1, 2, 3], [4]], 0, side="left")
    assert right.tolist() == [[1, 2, 3], [4, 0, 0]]
    assert left.tolist() == [[1, 2, 3], [0, 0, 4]]
    assert right.dtype == torch.long


def test_pad_rows_keeps_a_tensor_dtype_and_a_given_width():
    rows = [torch.tensor([1, 1], dtype=torch.int32), torch.tensor([], dtype=torch.int32)]
    out = pad_rows(rows, 7, width=3)
    assert out.dtype == torch.int32
    assert out.tolist() == [[1, 1, 7], [7, 7, 7]]


def test_pad_rows_rejects_bad_input():
    with pytest.raises(ValueError, match="side"):
        pad_rows([[1]], 0, side="middle")
    with pytest.raises(ValueError, match="no rows"):
        pad_rows([], 0)
    with pytest.raises(ValueError, match="width=1"):
        pad_rows([[1, 2]], 0, width=1)


def test_pad_ids_masks_exactly_the_real_tokens():
    out = pad_ids([(5, 6), (7,)], 9, side="left")
    assert out["input_ids"].tolist() == [[5, 6], [9, 7]]
    assert out["attention_mask"].tolist() == [[1, 1], [0, 1]]


def test_collate_pads_labels_with_ignore_and_seq_extras_with_zero():
    a = Encoded([1, 2, 3], [IGNORE, 2, 3], 1, False, {"tt": torch.tensor([0, 1, 1])}, ("tt",))
    b = Encoded([4], [4], 0, False)
    out = collate([a, b], pad_id=8)
    assert out["input_ids"].tolist() == [[1, 2, 3], [4, 8, 8]]
    assert out["labels"].tolist() == [[IGNORE, 2, 3], [4, IGNORE, IGNORE]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert out["tt"].tolist() == [[0, 1, 1], [0, 0, 0]]


def test_collate_inputs_pads_sequence_keys_and_concatenates_the_rest():
    items = [
        {"input_ids": torch.tensor([[1, 2]]), "attention_mask": torch.ones(1, 2, dtype=torch.long),
         "pixel_values": torch.zeros(1, 3)},
        {"input_ids": torch.tensor([[3]]), "attention_mask": torch.ones(1, 1, dtype=torch.long),
         "pixel_values": torch.ones(1, 3)},
    ]  # fmt: skip
    out = collate_inputs(items, pad_id=0, side="left")
    assert out["input_ids"].tolist() == [[1, 2], [0, 3]]
    assert out["attention_mask"].tolist() == [[1, 1], [0, 1]]
    assert out["pixel_values"].shape == (2, 3)


class _Tok:
    def __init__(self, pad, eos):
        self.pad_token_id, self.eos_token_id = pad, eos


@pytest.mark.parametrize(
    ("pad", "eos", "fallback", "expected"),
    [(3, 1, True, 3), (None, 1, True, 1), (None, 1, False, 0), (None, None, True, 0)],
)
def test_pad_token_id_rules(pad, eos, fallback, expected):
    assert pad_token_id(_Tok(pad, eos), eos_fallback=fallback) == expected


def test_pad_token_id_of_a_real_tokenizer():
    tok = tiny_tokenizer()
    assert pad_token_id(tok) == tok.pad_token_id
