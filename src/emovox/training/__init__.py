"""Training: recipes run as cross-validated experiments with Lightning.

* :mod:`emovox.training.data` — features per utterance (cached), seed-000 chunk batching,
  whole-utterance evaluation batches, SpecAugment copies on the fly;
* :mod:`emovox.training.module` — the LightningModule, the papers' SGD schedules, epoch history
  and the resume checkpoint;
* :mod:`emovox.training.transfer` — scratch / backbone models and transfer modes;
* :mod:`emovox.training.speaker` — speaker-recognition pretraining (``emovox pretrain-speaker``);
* :mod:`emovox.training.distill` — GE2E teacher distilled into the ResNet on training-side audio;
* :mod:`emovox.training.checks` — recipe names/options checked against the registries;
* :mod:`emovox.training.experiment` — ``run_experiment(recipe, out)`` (``emovox experiment``).

Nothing is imported here, so ``import emovox.training`` stays light.
"""
