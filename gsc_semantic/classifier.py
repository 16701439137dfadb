"""Task classifiers for the semantic-consistency metric.

Consistency = top-1 class agreement between original and reconstruction
(:class:`gsc_semantic.metrics.ClassifierAgreement`). The classifier must not be the
encoder's backbone (EfficientNet-Lite0), or the metric would reward the encoder for
agreeing with itself:

* ``fmnist``: a small CNN trained in-project on the Fashion-MNIST training split (shipped
  as ``checkpoints/fmnist_classifier``; ``gsc train-classifier`` rebuilds it);
* ``photos``: the ImageNet EfficientNet-Lite2 (1000 classes).

.. code-block:: python

    from gsc_semantic.classifier import task_classifier
    clf = task_classifier("fmnist")
    logits = clf(torch.rand(4, 1, 28, 28))     # [4, 10]
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import click
import torch
from torch import nn

__all__ = ["FashionCNN", "task_classifier", "train_fashion_classifier", "train_classifier"]

CLASSIFIER_DIR = "fmnist_classifier"


class FashionCNN(nn.Module):
    """A small CNN for 1x28x28 Fashion-MNIST (about 0.1 M parameters).

    :input x: [N, 1, 28, 28] in [0, 1].
    :output logits: [N, 10].
    """

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 96, 3, padding=1), nn.BatchNorm2d(96), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(96, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - 0.286) / 0.353)


def _checkpoint_dir() -> str:
    from bridge.common import checkpoints_root

    return os.path.join(str(checkpoints_root()), CLASSIFIER_DIR)


def train_fashion_classifier(out_dir: str, epochs: int = 2, batch: int = 128, seed: int = 0,
                             progress: bool = True) -> dict:
    """Train :class:`FashionCNN` on the training split; report val/test accuracy."""
    from safetensors.torch import save_file
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from .data import load_dataset

    torch.manual_seed(seed)
    model = FashionCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    train = load_dataset("fmnist", "train", seed=seed)
    loader = DataLoader(train, batch_size=batch, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    steps = epochs * len(loader)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    with tqdm(total=steps, disable=not progress, desc="train fmnist classifier") as bar:
        for _ in range(epochs):
            model.train()
            for item in loader:
                loss = nn.functional.cross_entropy(model(item["image"]), item["label"])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    model.eval()
    acc = {split: _accuracy(model, load_dataset("fmnist", split, seed=seed))
           for split in ("val", "test")}
    os.makedirs(out_dir, exist_ok=True)
    save_file(model.state_dict(), os.path.join(out_dir, "model.safetensors"))
    info = {"model": "FashionCNN", "epochs": epochs, "batch": batch, "seed": seed,
            "accuracy": acc}
    with open(os.path.join(out_dir, "config.json"), "w") as fh:
        json.dump(info, fh, indent=2)
    return info


@torch.no_grad()
def _accuracy(model: nn.Module, dataset, batch: int = 512) -> float:
    from torch.utils.data import DataLoader

    correct = total = 0
    for item in DataLoader(dataset, batch_size=batch):
        correct += int((model(item["image"]).argmax(1) == item["label"]).sum())
        total += item["label"].numel()
    return round(correct / total, 4)


def task_classifier(dataset: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The classifier whose top-1 agreement defines semantic consistency for ``dataset``."""
    if dataset == "fmnist":
        from safetensors.torch import load_file

        from .codec import verify_checkpoint

        path = _checkpoint_dir()
        weights = os.path.join(path, "model.safetensors")
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"{weights} is missing: rebuild it with "
                                    "`gsc train-classifier`")
        verify_checkpoint(path)
        model = FashionCNN()
        model.load_state_dict(load_file(weights))
        return model.eval()
    from .efficientnet_lite import efficientnet_lite

    return efficientnet_lite("lite2", pretrained=True).eval()


@click.command("train-classifier")
@click.option("--epochs", type=int, default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", default=None, help="Default: checkpoints/fmnist_classifier")
def train_classifier(epochs: int, seed: int, out_dir: str | None) -> None:
    """Train the Fashion-MNIST classifier used by the semantic-consistency metric."""
    info = train_fashion_classifier(out_dir or _checkpoint_dir(), epochs=epochs, seed=seed)
    if out_dir is None:
        from .codec import write_manifest

        write_manifest()
    click.echo(json.dumps(info))
