"""Batches in every format a loader yields, and clear errors for the ones torchmedic cannot use."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from torchmedic.batch import Batch, BatchKeys, concat, iterate, primary_output, unpack
from torchmedic.errors import InputError

X, Y = torch.randn(6, 3), torch.arange(6)


@pytest.mark.parametrize(
    "raw",
    [
        (X, Y),
        [X, Y],
        (X, Y, "path/to/file"),
        {"image": X, "label": Y},
        {"x": X, "y": Y, "id": [1, 2]},
        {"inputs": X, "targets": Y},
    ],
)
def test_unpack_finds_inputs_and_targets(raw: object) -> None:
    batch = unpack(raw)
    assert torch.equal(batch.first_input, X)
    assert batch.targets is not None and torch.equal(batch.targets, Y)
    assert batch.size == 6


def test_dict_keys_can_be_named() -> None:
    batch = unpack({"pixels": X, "cls": Y}, BatchKeys(inputs="pixels", targets="cls"))
    assert torch.equal(batch.first_input, X) and torch.equal(batch.targets, Y)


def test_bare_tensor_batches_use_the_inputs_as_targets() -> None:
    batch = unpack(X)
    assert batch.targets is None
    assert torch.equal(batch.loss_targets, X)


def test_numpy_and_tuple_inputs() -> None:
    batch = unpack((X.numpy(), Y.numpy()))
    assert isinstance(batch.first_input, torch.Tensor) and torch.equal(batch.targets, Y)
    multi = unpack(((X, X * 2), Y))
    assert isinstance(multi.inputs, tuple) and len(multi.inputs) == 2
    model = lambda a, b: a + b  # noqa: E731
    assert torch.equal(multi.run(model), X * 3)  # type: ignore[arg-type]


def test_select_and_concat_keep_samples_aligned() -> None:
    batch = Batch(X, Y)
    picked = batch.select(torch.tensor([4, 1]))
    assert torch.equal(picked.targets, torch.tensor([4, 1]))
    joined = concat([batch.select(slice(0, 2)), batch.select(slice(2, 6))])
    assert torch.equal(joined.first_input, X) and torch.equal(joined.targets, Y)


def test_primary_output_of_tuples_and_dicts() -> None:
    assert primary_output((X, "aux")) is X
    assert primary_output({"loss": Y, "logits": X}) is X
    assert primary_output("nothing") is None


def test_iterate_reads_a_dataloader() -> None:
    batches = list(iterate(DataLoader(TensorDataset(X, Y), batch_size=4)))
    assert [b.size for b in batches] == [4, 2]


@pytest.mark.parametrize(
    ("loader", "message"),
    [
        ([], "yielded no batches"),
        (DataLoader(TensorDataset(X[:3], Y[:3]), batch_size=4, drop_last=True), "yielded no batches"),
        (iter([(X, Y)]), "one-shot iterator"),
        (42, "cannot be iterated"),
        (["a string"], "expected a tensor"),
        ([{"foo": X}], "none holds the inputs"),
        ([(X, "label")], "not a tensor"),
        ([()], "empty tuple"),
    ],
)
def test_bad_loaders_get_clear_errors(loader: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        list(iterate(loader))  # type: ignore[arg-type]


def test_a_loader_that_raises_is_reported_with_its_batch_index() -> None:
    class Broken:
        def __iter__(self):  # type: ignore[no-untyped-def]
            yield (X, Y)
            raise OSError("disk gone")

    with pytest.raises(InputError, match=r"batch 1: OSError: disk gone"):
        list(iterate(Broken()))


def test_numpy_scalars_become_tensors() -> None:
    batch = unpack((np.ones((2, 2), dtype=np.float32), 3))
    assert batch.targets is not None and batch.targets.item() == 3
