"""The device and CPU-thread policy: one thread for small models on small inputs, every thread otherwise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cup_core.device import resolve_device, threads_for


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("model, input_shape, threads", [
    (nn.Linear(2, 5), (2,), 1),  # blobs
    (nn.Linear(64, 10), (1, 8, 8), 1),  # digits
    (nn.Linear(784, 10), (1, 28, 28), 2),  # MNIST: worth splitting
    (nn.Linear(1000, 1000), (2,), 2),  # a million parameters
])
def test_threads_follow_model_and_input_size(two_threads, model, input_shape, threads):
    with threads_for(sum(p.numel() for p in model.parameters()), torch.device("cpu"), input_shape):
        assert torch.get_num_threads() == threads
    assert torch.get_num_threads() == 2  # restored


def test_nested_runs_share_the_setting(two_threads):
    small = 6  # parameters of a 2-to-2 linear layer
    with threads_for(small, torch.device("cpu"), (2,)):
        with threads_for(small, torch.device("cpu"), (2,)):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1  # the outer run still holds it
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("name, message", [("meta", "not supported"), ("tpu", "unknown device"), ("cuda:x", "unknown device")])
def test_bad_device_names(name, message):
    with pytest.raises(ValueError, match=message):
        resolve_device(name)


@pytest.mark.parametrize("dataset, models, threads", [
    ("blobs", 1, 1), ("blobs", 41, 1),  # 41 stacked MLPs are still tiny
    ("digits", 1, 1), ("digits", 21, 2),  # 21 stacked CNNs see 21 × 64 input values per sample: worth splitting
])
def test_stacked_models_count_as_one_wider_model(two_threads, dataset, models, threads):
    from cup_core import Experiment, default_config

    with Experiment(default_config(dataset)).threads(torch.device("cpu"), models=models):
        assert torch.get_num_threads() == threads
