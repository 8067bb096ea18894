"""The built-in architectures, built by name so that a model card can rebuild them without pickle."""

from __future__ import annotations

from typing import Any, Callable

from torch import Tensor, nn

from .data import DatasetInfo


class LayerChain(nn.Module):
    """A model whose forward pass applies `chain()`'s layers in turn: what the batched engine can stack
    without vmap (batched.stacked_forward)."""

    def chain(self) -> list[nn.Module]:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.chain():
            x = layer(x)
        return x


class MLP(LayerChain):
    """The paper's toy classifier: 2-16-16-5 with ReLU."""

    def __init__(self, in_features: int = 2, hidden: tuple[int, ...] = (16, 16), num_classes: int = 5):
        super().__init__()
        widths = [in_features, *hidden]
        layers: list[nn.Module] = []
        for width_in, width_out in zip(widths, widths[1:]):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.net = nn.Sequential(*layers)

    def chain(self) -> list[nn.Module]:  # (N, in_features) -> (N, num_classes)
        return list(self.net)


class SmallCNN(LayerChain):
    """Two 3x3 convolutions, one max-pool and two linear layers: enough for 8x8 digits."""

    def __init__(self, in_channels: int = 1, image_size: int = 8, width: int = 16, num_classes: int = 10):
        super().__init__()
        # Pooling before the second ReLU gives the same outputs and gradients bit for bit (ReLU is monotone, and
        # where a window's maximum is ≤ 0 both orders pass no gradient), on a quarter of the values.
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
        )
        flat = 2 * width * (image_size // 2) ** 2
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(flat, 64), nn.ReLU(), nn.Linear(64, num_classes))

    def chain(self) -> list[nn.Module]:  # (N, C, H, W) -> (N, num_classes)
        return [*self.features, *self.classifier]


def resnet18_cifar(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """ResNet-18 for 32×32 images, as in the paper's CIFAR runs: a 3×3 stride-1 stem and no max-pool."""
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"mlp": MLP, "small_cnn": SmallCNN, "resnet18_cifar": resnet18_cifar}
TORCHVISION_PREFIX = "torchvision:"  # e.g. "torchvision:resnet50": torchvision's architecture, untrained


def architecture_kwargs(info: DatasetInfo) -> dict[str, Any]:
    """Constructor arguments of `info.architecture` for the data set's inputs (recorded in model cards)."""
    if info.architecture == "mlp":
        return {"in_features": info.input_shape[0], "hidden": [16, 16], "num_classes": info.num_classes}
    if info.architecture == "small_cnn":
        channels, height, _ = info.input_shape
        return {"in_channels": channels, "image_size": height, "width": 16, "num_classes": info.num_classes}
    if info.architecture == "resnet18_cifar":
        return {"num_classes": info.num_classes, "in_channels": info.input_shape[0]}
    return {"num_classes": info.num_classes}  # torchvision's models take 3-channel images


def check_fits(model: nn.Module, input_shape: tuple[int, ...], num_classes: int, architecture: str) -> None:
    """ValueError unless the model maps a batch of `input_shape` inputs to one score per class, in training mode
    and in evaluation mode (some torchvision models, e.g. googlenet, return other things while training). Run
    before any training, so a model that cannot take the data set's images fails at once, not hours later."""
    import torch

    was_training = model.training
    device = next(model.parameters()).device
    try:
        for training in (True, False):
            model.train(training)
            with torch.no_grad():
                output = model(torch.zeros(2, *input_shape, device=device))
            if not isinstance(output, torch.Tensor) or tuple(output.shape) != (2, num_classes):
                shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
                raise ValueError(f"{architecture} returns {shape} in {'training' if training else 'evaluation'} "
                                 f"mode, not one row of {num_classes} class scores per input; choose another model")
    except (RuntimeError, TypeError, AssertionError, IndexError) as err:  # torchvision's ViTs assert their size
        reason = (str(err).splitlines() or [type(err).__name__])[0][:200]
        raise ValueError(f"{architecture} cannot take this data set's inputs of shape {tuple(input_shape)} "
                         f"({reason}); choose another model") from None
    finally:
        model.train(was_training)


def check_architecture(architecture: Any) -> str:
    """`architecture` when it names a model build_model can build; ValueError otherwise (also for a config.json
    from elsewhere naming something else, checked when it is opened)."""
    if not isinstance(architecture, str):
        raise ValueError(f"an architecture is named by a string, got {str(architecture)[:80]!r}")
    if architecture.startswith(TORCHVISION_PREFIX):
        from torchvision import models

        name = architecture[len(TORCHVISION_PREFIX):]
        if name not in models.list_models(module=models):
            raise ValueError(f"torchvision has no classification model {name[:80]!r}; see "
                             "torchvision.models.list_models()")
    elif architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture[:80]!r}; known: {', '.join(ARCHITECTURES)}, "
                         f"or {TORCHVISION_PREFIX}<name>")
    return architecture


def build_model(architecture: str, kwargs: dict[str, Any]) -> nn.Module:
    """A fresh model by name: a built-in architecture, or one of torchvision's as "torchvision:<name>"
    (never with downloaded weights: a user's own weights come in through checkpoints.py)."""
    check_architecture(architecture)
    if architecture.startswith(TORCHVISION_PREFIX):
        from torchvision import models

        return models.get_model(architecture[len(TORCHVISION_PREFIX):], weights=None, **kwargs)
    kwargs = dict(kwargs)
    if "hidden" in kwargs:
        kwargs["hidden"] = tuple(kwargs["hidden"])
    return ARCHITECTURES[architecture](**kwargs)
