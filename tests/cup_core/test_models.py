"""The models: the built-in MLP and small CNN, the paper's CIFAR ResNet-18, torchvision's by name, and the check
that a model fits a data set's inputs before anything trains."""

from __future__ import annotations

import pytest
import torch

from cup_core.data import dataset_info
from cup_core.models import MLP, SmallCNN, architecture_kwargs, build_model, check_fits


@pytest.mark.parametrize("dataset, architecture", [("blobs", "mlp"), ("digits", "small_cnn")])
def test_each_embedded_set_gets_its_default_model_sized_to_its_inputs(dataset, architecture):
    info = dataset_info(dataset)
    assert info.architecture == architecture
    model = build_model(architecture, architecture_kwargs(info))
    assert isinstance(model, MLP if architecture == "mlp" else SmallCNN)
    assert model(torch.zeros(3, *info.input_shape)).shape == (3, info.num_classes)
    check_fits(model, info.input_shape, info.num_classes, architecture)


def test_unknown_architectures_are_named_in_the_error():
    with pytest.raises(ValueError, match="unknown architecture 'vgg'; known: mlp, small_cnn, resnet18_cifar"):
        build_model("vgg", {})
    with pytest.raises(ValueError, match="named by a string"):
        build_model(None, {})


def test_a_model_that_cannot_take_the_inputs_says_so():
    with pytest.raises(ValueError, match=r"mlp cannot take this data set's inputs of shape \(1, 8, 8\)"):
        check_fits(MLP(in_features=2), (1, 8, 8), 5, "mlp")


@pytest.mark.slow
def test_a_model_that_asserts_its_input_size_says_so_in_one_line():
    with pytest.raises(ValueError, match=r"vit_b_32 cannot take this data set's inputs of shape \(1, 8, 8\) "
                                         r"\(Wrong image height! Expected 224 but got 8!\)"):
        check_fits(build_model("torchvision:vit_b_32", {"num_classes": 10}), (1, 8, 8), 10, "vit_b_32")


@pytest.mark.slow
def test_cifar_resnet18_and_torchvision_models_by_name():
    model = build_model("resnet18_cifar", {"num_classes": 10})
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert build_model("torchvision:resnet18", {"num_classes": 7}).fc.out_features == 7
    with pytest.raises(ValueError, match="torchvision has no classification model"):
        build_model("torchvision:not_a_model", {})


def test_a_model_must_give_class_scores_in_training_mode_too():
    from torch import nn

    from cup_core.models import check_fits

    class AuxiliaryWhileTraining(nn.Module):  # as torchvision's googlenet and inception_v3
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 3)

        def forward(self, x):
            logits = self.linear(x)
            return (logits, logits) if self.training else logits

    model = AuxiliaryWhileTraining()
    with pytest.raises(ValueError, match="returns tuple in training mode"):
        check_fits(model, (4,), 3, "aux")
    assert model.training  # left as it was
    with pytest.raises(ValueError, match=r"returns \(2, 3\) in training mode, not one row of 5 class scores"):
        check_fits(nn.Linear(4, 3), (4,), 5, "linear")
    check_fits(nn.Linear(4, 3), (4,), 3, "linear")
