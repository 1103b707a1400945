"""Training and evaluation runners: recipes run through speaker-independent folds.

Every runner uses :mod:`emovox.training.harness` (utterances, folds and the ``data.folds``
check, run fingerprint, ``fold_NN_<name>/result.json`` layout, report) and
:mod:`emovox.training.features` (the one cached-features loop; utterances load their own audio):

* :mod:`emovox.training.experiment` — CNN / upstream-head experiments with Lightning
  (``emovox experiment``);
* :mod:`emovox.training.segment_level` — seed 002 segment models (``emovox segment-experiment``);
* :mod:`emovox.training.text` — text fine-tuning through the folds (``emovox text-train``);
* :mod:`emovox.training.baseline` — frozen upstream vectors + SVM (``emovox baseline``).

Building blocks: :mod:`~emovox.training.data` (chunk batching, feature loading),
:mod:`~emovox.training.module` (LightningModule, schedules, history, resume checkpoint),
:mod:`~emovox.training.transfer` (scratch / backbone models), :mod:`~emovox.training.speaker`
(speaker pretraining), :mod:`~emovox.training.distill` (GE2E distillation),
:mod:`~emovox.training.checks` (recipe names checked against the registries).

Nothing is imported here, so ``import emovox.training`` stays light.
"""
