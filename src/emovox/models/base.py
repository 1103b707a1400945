"""The interface every emovox classifier implements.

Input is time-major features ``(B, T, F)`` float32 plus optional ``lengths`` (B,) — valid frames
per row of a padded batch; output is logits ``(B, C)``. :meth:`SpeechClassifier.embed` gives the
fixed-size vector the classifier layer reads ``(B, D)``.
"""

from __future__ import annotations

import torch
from torch import nn

from emovox.errors import ModelError


def halve_lengths(lengths: torch.Tensor, times: int) -> torch.Tensor:
    """Frame counts after ``times`` stride-2 layers with 'same' padding (ceil(n / 2) each time)."""
    for _ in range(times):
        lengths = torch.div(lengths - 1, 2, rounding_mode="floor") + 1
    return lengths


def halve_size(size: int, times: int) -> int:
    """Python-int counterpart of :func:`halve_lengths` (for layer sizes at build time)."""
    for _ in range(times):
        size = (size - 1) // 2 + 1
    return size


class SpeechClassifier(nn.Module):
    """Base class: ``forward = classifier(embed(x, lengths))``.

    Subclasses set ``in_features`` (F, or None for any), ``embed_dim`` (D), ``num_classes`` and
    ``classifier`` (the output layer), and list in ``HEAD`` the names of their segment-level
    child modules (after temporal pooling) — what a linear probe trains.
    """

    HEAD: tuple[str, ...] = ("classifier",)
    in_features: int | None = None
    embed_dim: int = 0
    num_classes: int = 0
    classifier: nn.Linear

    def check_input(self, x: torch.Tensor) -> None:
        """ModelError unless ``x`` is (B, T, F) with the feature size this model was built for."""
        if x.dim() != 3 or (self.in_features is not None and x.shape[-1] != self.in_features):
            want = f"(batch, frames, {self.in_features})" if self.in_features else "(batch, frames, features)"
            raise ModelError(
                f"{type(self).__name__} expects time-major features {want}, got shape {tuple(x.shape)} "
                "(check the front-end settings against the model config)"
            )

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, F) -> (B, embed_dim)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, F) -> logits (B, num_classes)."""
        return self.classifier(self.embed(x, lengths))

    def replace_classifier(self, num_classes: int) -> None:
        """New randomly initialised output layer (e.g. speaker -> emotion transfer)."""
        self.classifier = nn.Linear(self.classifier.in_features, num_classes)
        self.num_classes = num_classes


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["SpeechClassifier", "count_parameters", "halve_lengths", "halve_size"]
