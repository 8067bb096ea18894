"""Seconds per sweep point for the paper's ResNet-18 on 32x32 images, on this machine's CPU.

A CIFAR-10 stand-in of random pixels is written in CIFAR's own on-disk format (so the real loader runs), a
random ResNet-18 checkpoint is the original (training one is not what is measured) and the oracle is skipped.
One CUP point runs at the paper's batch size, 256, for a few steps; the figures are seconds per unlearning
step, seconds per evaluated image, and what they make for one point of the paper-scale run (CIFAR-10, class
0: 5,000 forget and 45,000 retain images, 5 epochs = 100 steps, then the evaluation's 70,000 forward passes:
the training set, the retained classes' test images, the whole test set and the forgotten class's).

    .venv/bin/python bench/resnet18_cpu.py [--steps 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _common import save

PER_CLASS = 256  # one batch of the forget class: a step per epoch
TEST_SIZE = 512
PAPER = {"forget": 5000, "retain": 45000, "batch": 256, "epochs": 5, "evaluated": 50000 + 9000 + 10000 + 1000}


def write_cifar10(root: Path) -> None:
    """Random images in the official python-pickle layout (batches of dicts with b"data" and b"labels")."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    labels = np.repeat(np.arange(10), PER_CLASS)
    rng.shuffle(labels)
    for index, part in enumerate(np.array_split(labels, 5), start=1):
        batch = {b"data": rng.integers(0, 256, (len(part), 3072), dtype=np.uint8), b"labels": part.tolist()}
        (folder / f"data_batch_{index}").write_bytes(pickle.dumps(batch, protocol=2))
    test = {b"data": rng.integers(0, 256, (TEST_SIZE, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, TEST_SIZE).tolist()}
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    names = {b"label_names": [f"class{k}".encode() for k in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(names, protocol=2))


def main() -> None:
    import torch
    from safetensors.torch import save_file

    from cup_core import Experiment, SweepPlan, resolve_device, run_sweep
    from cup_core.checkpoints import file_sha256
    from cup_core.config import Sources
    from cup_core.data import default_config, load_unlearning_data, resolve_config
    from cup_core.metrics import evaluate
    from cup_core.models import resnet18_cifar

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="unlearning steps timed (epochs of one batch pair)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        write_cifar10(work / "data")
        torch.manual_seed(0)
        checkpoint = work / "resnet18.safetensors"
        save_file(resnet18_cifar(num_classes=10).state_dict(), str(checkpoint))
        sources = Sources(data_root=str(work / "data"), checkpoint=str(checkpoint))
        config = resolve_config(default_config("cifar10", original_sha256=file_sha256(checkpoint), oracle=False),
                                sources)
        config = replace(config, unlearn=replace(config.unlearn, epochs=args.steps))
        experiment = Experiment(config, work / "cache")
        start = time.perf_counter()
        run_sweep(experiment, SweepPlan({"cup": (0.5,)}), device, sources=sources)
        sweep_s = time.perf_counter() - start
        record = experiment.point_record("cup", 0.5, 0)
        step_s = record["seconds"] / record["steps"]
        data = load_unlearning_data(config, sources).to(device)
        model = experiment.load_model("cup", 0.5, 0).to(device)
        evaluate(model, data)  # warm-up
        start = time.perf_counter()
        evaluate(model, data)
        evaluated = len(data.forget) + len(data.retain) + len(data.test) + len(data.full_test) + len(data.forget_test)
        image_s = (time.perf_counter() - start) / evaluated
    steps = PAPER["epochs"] * min(-(-PAPER["forget"] // PAPER["batch"]), -(-PAPER["retain"] // PAPER["batch"]))
    point_s = steps * step_s + PAPER["evaluated"] * image_s
    figures = {"device": str(device), "batch": PAPER["batch"], "timed_steps": record["steps"],
               "seconds_per_step": step_s, "seconds_per_evaluated_image": image_s,
               "stand_in_sweep_s": sweep_s, "paper_scale_steps_per_point": steps,
               "paper_scale_seconds_per_point": point_s}
    print(f"ResNet-18, 32x32, batch {PAPER['batch']} on {device}: {step_s:.2f} s per CUP step (two gradients), "
          f"{image_s * 1e3:.2f} ms per evaluated image")
    print(f"paper-scale point (CIFAR-10 class 0, {steps} steps + evaluation): about {point_s / 60:.0f} min on "
          f"{device}; the stand-in sweep took {sweep_s:.1f} s")
    save(f"resnet18_{device.type}", figures)


if __name__ == "__main__":
    main()
