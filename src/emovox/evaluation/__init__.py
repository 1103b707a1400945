"""Scoring and reporting: metrics (WA/UA/F1, confusion, seed 002 clip metrics) and report writers."""

from emovox.evaluation.metrics import (
    CLIP_METRIC_NAMES,
    METRIC_NAMES,
    classification_metrics,
    confusion,
    mean_std,
    row_normalize,
    segment_clip_metrics,
    unweighted_accuracy,
    weighted_accuracy,
)

__all__ = [
    "CLIP_METRIC_NAMES",
    "METRIC_NAMES",
    "classification_metrics",
    "confusion",
    "mean_std",
    "row_normalize",
    "segment_clip_metrics",
    "unweighted_accuracy",
    "weighted_accuracy",
]
