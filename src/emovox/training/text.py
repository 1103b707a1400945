"""Fine-tuning the text emotion classifier end to end (seed 001 §4.2.2), with Lightning.

Seed 001's BERT settings: cross-entropy, Adam at lr 2e-5, batch 32, the whole encoder fine-tuned
together with the new FC head. The paper gives no epoch count or stopping rule; we stop early on
the validation part (``monitor``, patience ``early_stopping`` epochs) and restore the best
epoch's weights (kept in memory: no checkpoint files, nothing pickled). Batches are padded to
their longest text (attention masks exclude the padding).

Validation metrics are logged under the same names as :class:`emovox.training.module.EmotionModule`
(``valid_loss``, ``valid_ua``, ``valid_wa``), plus ``valid_weighted_f1`` (MELD's official metric).

:func:`run_text_fold` trains on one fold's train part, selects on its valid part and writes the
valid and test log posteriors (a :class:`emovox.fusion.ScoreSet`), metrics and the model.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Sequence, cast

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from emovox.errors import ConfigError
from emovox.evaluation.metrics import unweighted_accuracy, weighted_accuracy
from emovox.io import atomic_write_json, read_json
from emovox.models.text import TextModel, is_empty_text
from emovox.scores import ScoreSet
from emovox.training import harness
from emovox.training.module import quiet_lightning

log = logging.getLogger(__name__)

Monitor = Literal["valid_ua", "valid_wa", "valid_loss", "valid_weighted_f1"]


@dataclass
class TextTrainConfig:
    """The ``text`` section of a recipe."""

    encoder: str = "all-MiniLM-L6-v2"  #: bundled MiniLM, or a local Hugging Face model folder
    max_length: int = 128  #: tokens incl. [CLS]/[SEP]; longer texts are truncated (reported)
    pooling: Literal["cls", "mean"] = "cls"
    dropout: float = 0.1
    lr: float = 2e-5  #: Adam (seed 001)
    batch_size: int = 32
    eval_batch_size: int = 64
    epochs: int = 10  #: at most
    early_stopping: int | None = 2  #: patience in epochs on ``monitor``; None = all epochs, keep best
    monitor: Monitor = "valid_ua"
    threads: int | None = None  #: torch.set_num_threads (None = leave as is)
    limit_train_batches: int | None = None  #: smoke tests only
    progress: bool = True

    def validate(self) -> None:
        checks = [(self.lr > 0, "lr", "must be > 0"), (self.batch_size >= 1, "batch_size", "must be >= 1"),
                  (self.eval_batch_size >= 1, "eval_batch_size", "must be >= 1"),
                  (self.epochs >= 1, "epochs", "must be >= 1"),
                  (self.early_stopping is None or self.early_stopping >= 1, "early_stopping", "null or >= 1"),
                  (self.max_length >= 4, "max_length", "must be >= 4")]
        for ok, key, what in checks:
            if not ok:
                raise ConfigError(f"text.{key}: {what}")


def text_config_from_dict(raw: dict[str, Any] | None) -> TextTrainConfig:
    """Validate a ``text:`` mapping (same checks and messages as recipe sections)."""
    from emovox.config import _build  # the recipe validator: unknown keys / wrong types raise

    cfg = _build(TextTrainConfig, raw or {}, "text")
    cfg.validate()
    return cfg


# ------------------------------------------------------------------------------------ data
class TokenizedTexts(torch.utils.data.Dataset):
    """Token ids (truncated to ``max_length``) and class indices."""

    def __init__(self, model: TextModel, texts: Sequence[str], labels: Sequence[int], where: str) -> None:
        model.report_truncation(texts, where)
        enc = model.tokenizer(list(texts), truncation=True, max_length=model.config.max_length)
        self.ids = enc["input_ids"]
        self.labels = [int(y) for y in labels]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        return self.ids[i], self.labels[i]


class LengthBuckets(torch.utils.data.Sampler):
    """Shuffled batches of similar-length texts (less padding, the same examples every epoch).

    Each epoch: shuffle, cut into pools of ``pool`` batches, sort each pool by length, cut it into
    batches, shuffle the batch order. Deterministic from ``seed`` and the epoch count.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, pool: int = 50) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.pool, self.epoch = batch_size, seed, pool, 0

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        rng = np.random.default_rng(self.seed * 100_003 + self.epoch)
        self.epoch += 1
        order, size = rng.permutation(len(self.lengths)), self.batch_size * self.pool
        batches = []
        for start in range(0, len(order), size):
            chunk = order[start:start + size]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        for i in rng.permutation(len(batches)):
            yield batches[i]


def collate(pad_id: int):
    """Pad a batch to its longest text; returns (inputs dict, labels)."""

    def fn(items: list[tuple[list[int], int]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        width = max(len(ids) for ids, _ in items)
        ids = torch.full((len(items), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, (seq, _) in enumerate(items):
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        return {"input_ids": ids, "attention_mask": mask}, torch.tensor([y for _, y in items])

    return fn


def usable_rows(texts: Sequence[object], labels: Sequence[int], where: str) -> tuple[list[str], list[int]]:
    """Drop empty/missing transcripts from a training or validation part (warning with the count)."""
    keep = [i for i, t in enumerate(texts) if not is_empty_text(t)]
    if len(keep) < len(texts):
        log.warning("%s: %d of %d utterances have an empty or missing transcript and are left out of text "
                    "training/selection", where, len(texts) - len(keep), len(texts))
    return [str(texts[i]) for i in keep], [int(labels[i]) for i in keep]


# ---------------------------------------------------------------------------------- module
class TextModule(L.LightningModule):
    """Cross-entropy fine-tuning of a :class:`TextModel`'s classifier with Adam."""

    def __init__(self, model: TextModel, lr: float) -> None:
        super().__init__()
        self.classifier = model.classifier
        self.lr = lr
        self._val: list[tuple[torch.Tensor, torch.Tensor]] = []

    def training_step(self, batch: tuple[dict[str, torch.Tensor], torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, y = batch
        loss = F.cross_entropy(self.classifier(**inputs), y)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(y))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val = []

    def validation_step(self, batch: tuple[dict[str, torch.Tensor], torch.Tensor], batch_idx: int) -> None:
        inputs, y = batch
        self._val.append((self.classifier(**inputs).detach().float().cpu(), y.cpu()))

    def on_validation_epoch_end(self) -> None:
        from sklearn.metrics import f1_score

        if not self._val:
            return
        logits, y = torch.cat([v[0] for v in self._val]), torch.cat([v[1] for v in self._val])
        pred, truth = logits.argmax(1).numpy(), y.numpy()
        self.log_dict({"valid_loss": F.cross_entropy(logits, y).item(),
                       "valid_ua": unweighted_accuracy(truth, pred), "valid_wa": weighted_accuracy(truth, pred),
                       "valid_weighted_f1": float(f1_score(truth, pred, average="weighted", zero_division=0))},
                      prog_bar=True)
        self._val = []

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam([p for p in self.classifier.parameters() if p.requires_grad], lr=self.lr)


class KeepBest(L.Callback):
    """Remembers every epoch's validation metrics and the best epoch's weights (in memory)."""

    def __init__(self, monitor: str) -> None:
        self.monitor, self.sign = monitor, (-1.0 if monitor == "valid_loss" else 1.0)
        self.best: float | None = None
        self.best_epoch = -1
        self.state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, float]] = []

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("valid_", "train_loss"))}
        self.history.append({"epoch": trainer.current_epoch + 1, **metrics})
        value = metrics[self.monitor]
        if self.best is None or self.sign * value > self.sign * self.best:
            self.best, self.best_epoch = value, trainer.current_epoch + 1
            self.state = copy.deepcopy(cast(TextModule, module).classifier.state_dict())


@dataclass
class TextTrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_value: float | None = None
    monitor: str = "valid_ua"
    seconds: float = 0.0
    n_train: int = 0
    n_valid: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_text_model(model: TextModel, train_texts: Sequence[object], train_y: Sequence[int],
                     valid_texts: Sequence[object], valid_y: Sequence[int], cfg: TextTrainConfig,
                     seed: int = 0) -> TextTrainResult:
    """Fine-tune ``model`` in place; the best validation epoch's weights are restored at the end."""
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    L.seed_everything(seed, workers=True, verbose=False)
    train_texts, train_y = usable_rows(train_texts, train_y, "training part")
    valid_texts, valid_y = usable_rows(valid_texts, valid_y, "validation part")
    if not train_texts:
        raise ConfigError("no training utterance has a transcript; the text model cannot be trained "
                          "(transcribe the audio first: emovox transcribe)")
    model.check_texts(train_texts, "training part")
    pad_id = model.tokenizer.pad_token_id or 0
    train_ds = TokenizedTexts(model, train_texts, train_y, "training part")
    train_dl = DataLoader(train_ds, batch_sampler=LengthBuckets([len(i) for i in train_ds.ids], cfg.batch_size, seed),
                          collate_fn=collate(pad_id))
    valid_dl = None
    if valid_texts:
        valid_ds = TokenizedTexts(model, valid_texts, valid_y, "validation part")
        order = np.argsort([len(i) for i in valid_ds.ids], kind="stable").tolist()  # metrics ignore the order
        valid_dl = DataLoader(valid_ds, batch_sampler=[order[i:i + cfg.eval_batch_size]
                                                       for i in range(0, len(order), cfg.eval_batch_size)],
                              collate_fn=collate(pad_id))
    keep = KeepBest(cfg.monitor)
    callbacks: list[L.Callback] = [keep]
    if valid_dl is not None and cfg.early_stopping:
        callbacks.append(L.pytorch.callbacks.EarlyStopping(cfg.monitor, patience=cfg.early_stopping,
                                                           mode="min" if cfg.monitor == "valid_loss" else "max"))
    if valid_dl is None:
        log.warning("no validation transcripts: training %d epochs without early stopping", cfg.epochs)
    quiet_lightning()
    trainer = L.Trainer(max_epochs=cfg.epochs, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=cfg.progress,
                        num_sanity_val_steps=0, callbacks=callbacks, limit_train_batches=cfg.limit_train_batches)
    start = time.perf_counter()
    model.classifier.train()  # from_pretrained leaves eval mode, which Lightning would keep (no dropout)
    trainer.fit(TextModule(model, cfg.lr), train_dl, valid_dl)
    if keep.state is not None:
        model.classifier.load_state_dict(keep.state)
    model.classifier.eval()
    return TextTrainResult(keep.history, keep.best_epoch if keep.state is not None else trainer.current_epoch,
                           keep.best, cfg.monitor, time.perf_counter() - start, len(train_texts), len(valid_texts))


# ------------------------------------------------------------------------------------ folds
@dataclass
class TranscriptConfig:
    """The ``asr`` section: where the text of each utterance comes from."""

    source: Literal["corpus", "asr", "asr_if_missing"] = "corpus"  #: asr = always Whisper (ignore corpus text)
    beam_size: int = 1
    cache_dir: str | None = None  #: transcript cache (default: the emovox cache folder)


@dataclass
class MultimodalRecipe:
    """A speech recipe (:class:`emovox.config.Recipe`) plus the ``text``, ``asr`` and ``fusion`` sections."""

    recipe: Any
    text: TextTrainConfig
    asr: TranscriptConfig
    fusion: Any  # emovox.fusion.FusionConfig


def load_multimodal_recipe(path: str | Path, overrides: Sequence[str] = ()) -> MultimodalRecipe:
    """Read a recipe YAML; ``text``/``asr``/``fusion`` are split off, the rest is the speech recipe."""
    from emovox.config import _build, apply_overrides, read_recipe_yaml, recipe_from_dict
    from emovox.fusion import FusionConfig

    p = Path(path)
    raw = read_recipe_yaml(p, "recipes/meld/text.yaml")
    try:
        raw = apply_overrides(raw, list(overrides))
        text = text_config_from_dict(raw.pop("text", None))
        asr = _build(TranscriptConfig, raw.pop("asr", None), "asr")
        fusion = _build(FusionConfig, raw.pop("fusion", None), "fusion")
        fusion.validate()
        return MultimodalRecipe(recipe_from_dict(raw, base_dir=p.resolve().parent), text, asr, fusion)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def transcribed(utterances: Sequence[Any], cfg: TranscriptConfig, progress: bool = False) -> list[Any]:
    """Utterances with their text taken from the corpus or from Whisper, as ``cfg.source`` says."""
    if cfg.source == "corpus":
        return list(utterances)
    from emovox.asr import Transcriber, fill_transcripts

    filled, _ = fill_transcripts(utterances, Transcriber(beam_size=cfg.beam_size, cache_dir=cfg.cache_dir),
                                 overwrite=cfg.source == "asr", progress=progress)
    return filled


def run_text_fold(utterances: Sequence[Any], fold: Any, classes: Sequence[str], cfg: TextTrainConfig,
                  out_dir: str | Path, seed: int = 0, save_model: bool = True,
                  run: harness.FoldRun | None = None) -> dict[str, Any]:
    """Train on ``fold.train``, select on ``fold.valid``, score ``fold.valid`` and ``fold.test``.

    Writes ``scores.json`` (an :class:`emovox.fusion.ScoreSet` with both parts), ``model/`` and,
    last (it marks the fold finished), ``result.json`` (test metrics, training history). Inside a
    harness ``run`` a finished fold of the same recipe is reused.
    """
    out = Path(out_dir)
    done = run.finished(out) if run is not None else (
        read_json(out / harness.RESULT_FILE) if (out / harness.RESULT_FILE).is_file() else None)
    if done is not None:
        log.info("text fold %s already finished (%s)", fold.name, out)
        return done
    by_id = {u.id: u for u in utterances}
    index = {c: i for i, c in enumerate(classes)}
    part = {name: [by_id[i] for i in getattr(fold, name)] for name in ("train", "valid", "test")}
    for name, utts in part.items():
        unknown = sorted({u.label for u in utts} - set(index))
        if unknown:
            raise ConfigError(f"fold {fold.name}, {name} part: label(s) {unknown} are not in the classes {list(classes)}")
    L.seed_everything(seed, workers=True, verbose=False)  # the new head's initial weights come from the seed
    model = TextModel.from_pretrained_encoder(classes, cfg.encoder, cfg.max_length, cfg.pooling, cfg.dropout)
    result = train_text_model(model, [u.text for u in part["train"]], [index[u.label] for u in part["train"]],
                              [u.text for u in part["valid"]], [index[u.label] for u in part["valid"]], cfg, seed)
    scores = ScoreSet(list(classes), {"modality": "text", "fold": fold.name, "encoder": cfg.encoder})
    for name in ("valid", "test"):
        utts = part[name]
        if utts:
            scores.add(name, [u.id for u in utts], [index[u.label] for u in utts],
                       model.log_posteriors([u.text for u in utts], cfg.eval_batch_size, where=f"{fold.name} {name}"))
    scores.save(out / "scores.json")
    if save_model:
        model.save(out / "model")
    lengths = model.token_lengths([u.text for u in part["test"] if not is_empty_text(u.text)])
    metrics = scores.metrics("test")
    summary = {"fold": fold.name, "metrics": metrics, "train": result.to_dict(), "max_length": cfg.max_length,
               "n_truncated_test": int((lengths > cfg.max_length).sum()), "seed": seed}
    if run is not None:
        summary = run.finish(out, summary)
    else:
        atomic_write_json(out / harness.RESULT_FILE, summary)
    log.info("text fold %s: UA %.4f WA %.4f weighted-F1 %.4f", fold.name, metrics["ua"], metrics["wa"],
             metrics["weighted_f1"])
    return summary


#: Text-section keys that may change between a run and its resumption.
RESUMABLE_KEYS = ("text.progress", "text.threads")


def run_text_experiment(mm: MultimodalRecipe, out_dir: str | Path, progress: bool | None = None,
                        overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Text-only cross-validation over the recipe's folds (same folds as ``emovox experiment``)."""
    recipe, cfg = mm.recipe, mm.text
    if progress is not None:
        cfg = replace(cfg, progress=progress)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # only what the text runner uses: the speech sections (model, train...) do not change its results
    raw = {"name": recipe.name, "seed": recipe.seed, "data": asdict(recipe.data), "text": asdict(cfg),
           "asr": asdict(mm.asr)}
    run = harness.prepare_run(out_dir, "text", recipe, raw, ignore=RESUMABLE_KEYS, overrides=overrides,
                              utterances=lambda utts: transcribed(utts, mm.asr, cfg.progress))
    results = []
    for i, fold in run.selected():
        if recipe.data.limit_per_fold:
            fold.train = list(fold.train)[: recipe.data.limit_per_fold]
        results.append(run_text_fold(run.utterances, fold, run.classes, cfg, run.fold_dir(i, fold),
                                     recipe.seed * 1000 + i, run=run))
    return run.report(results, f"{recipe.name}: text only ({cfg.encoder})")


__all__ = ["KeepBest", "MultimodalRecipe", "TextModule", "TextTrainConfig", "TextTrainResult", "TranscriptConfig",
           "load_multimodal_recipe", "run_text_experiment", "run_text_fold", "text_config_from_dict",
           "train_text_model", "transcribed"]
