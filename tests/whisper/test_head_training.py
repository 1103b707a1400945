"""fit_head: pooled-statistics heads learn; corpus-adversarial training learns and hides the corpus."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emovox.errors import ConfigError
from emovox.whisper.model import HeadTraining, balanced_accuracy, fit_head, predict_head


def two_corpora(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 2, 8) pooled statistics: 3 classes along the first dimensions, 2 corpora far apart along the last."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    d = rng.integers(0, 2, n)
    x = rng.normal(0, 1, (n, 2, 8))
    x[:, :, 0] += 3.0 * (y == 1)[:, None]
    x[:, :, 1] += 3.0 * (y == 2)[:, None]
    x[:, :, 7] += 6.0 * d[:, None]
    return x.astype(np.float32), y, d


def domain_accuracy(head, x: np.ndarray, d: np.ndarray) -> float:
    """How well a fresh linear probe finds the corpus in the head's hidden layer (train/test halves)."""
    from sklearn.linear_model import LogisticRegression

    head.eval()
    with torch.inference_mode():
        h = head.features(torch.from_numpy(x).transpose(0, 1)).numpy()
    half = len(h) // 2
    probe = LogisticRegression(max_iter=2000).fit(h[:half], d[:half])
    return float(probe.score(h[half:], d[half:]))


def test_a_head_learns_separable_classes():
    x, y, _ = two_corpora()
    xt, yt, _ = two_corpora(seed=1)
    head, hist = fit_head(x, y, np.ones(len(y)), 3, HeadTraining(epochs=30, hidden=16, dropout=0.0), valid=(xt, yt))
    assert balanced_accuracy(yt, predict_head(head, xt).argmax(1)) >= 0.9 and hist["valid_ua"] >= 0.9


def test_corpus_adversarial_head_learns_and_hides_the_corpus():
    x, y, d = two_corpora()
    xt, yt, dt = two_corpora(seed=1)
    cfg = dict(epochs=30, hidden=16, dropout=0.0)
    plain, _ = fit_head(x, y, np.ones(len(y)), 3, HeadTraining(**cfg))
    adv, _ = fit_head(x, y, np.ones(len(y)), 3, HeadTraining(**cfg, adversarial=1.0), domains=d)
    assert balanced_accuracy(yt, predict_head(adv, xt).argmax(1)) >= 0.9
    assert domain_accuracy(adv, xt, dt) < domain_accuracy(plain, xt, dt) - 0.1


def test_adversarial_training_needs_a_hidden_layer_and_domains():
    x, y, d = two_corpora(n=50)
    with pytest.raises(ConfigError, match="hidden layer"):
        fit_head(x, y, np.ones(len(y)), 3, HeadTraining(epochs=1, adversarial=0.5), domains=d)
    with pytest.raises(ConfigError, match="one domain id per training clip"):
        fit_head(x, y, np.ones(len(y)), 3, HeadTraining(epochs=1, hidden=8, adversarial=0.5))
    with pytest.raises(ConfigError, match="at least two domains"):
        fit_head(x, y, np.ones(len(y)), 3, HeadTraining(epochs=1, hidden=8, adversarial=0.5), domains=np.zeros(len(y), int))


def test_an_ensemble_head_is_the_mean_of_its_members_and_loads_by_config():
    from emovox.whisper.model import PooledHead, ensemble_head

    x, y, d = two_corpora(n=600)
    cfg = dict(epochs=5, hidden=16, dropout=0.0)
    members = [fit_head(x, y, np.ones(len(y)), 3, HeadTraining(**cfg, seed=s))[0] for s in (0, 1)]
    members.append(fit_head(x, y, np.ones(len(y)), 3, HeadTraining(**cfg, adversarial=0.3), domains=d)[0])
    ens = ensemble_head(members)
    expected = np.mean([predict_head(h, x) for h in members], axis=0)
    assert np.allclose(predict_head(ens, x), expected, atol=1e-5)
    assert not np.allclose(predict_head(members[0], x), expected, atol=1e-3)  # the members differ
    rebuilt = PooledHead(2, 8, 3, hidden=16, members=3)  # what a package's config builds
    rebuilt.load_state_dict(ens.state_dict())
    assert np.allclose(predict_head(rebuilt, x), expected, atol=1e-5)
    assert not any(k.startswith("others") for k in members[0].state_dict())  # one head: names unchanged
    with pytest.raises(ConfigError, match="one standardisation"):
        ensemble_head([members[0], fit_head(x[:300], y[:300], np.ones(300), 3, HeadTraining(**cfg))[0]])
    with pytest.raises(ConfigError, match="combine 'concat'"):
        PooledHead(2, 8, 3, combine="weighted", members=2)


@pytest.mark.parametrize("option", [{"mixup": 0.4}, {"label_smoothing": 0.1}, {"mixup": 0.4, "label_smoothing": 0.1}])
def test_heads_learn_with_mixup_and_label_smoothing(option):
    x, y, _ = two_corpora()
    xt, yt, _ = two_corpora(seed=1)
    head, _ = fit_head(x, y, np.ones(len(y)), 3, HeadTraining(epochs=30, hidden=16, dropout=0.0, **option))
    assert balanced_accuracy(yt, predict_head(head, xt).argmax(1)) >= 0.9


def test_mixup_with_adversarial_training_is_refused():
    x, y, d = two_corpora(n=50)
    with pytest.raises(ConfigError, match="mixup with corpus-adversarial"):
        fit_head(x, y, np.ones(len(y)), 3, HeadTraining(epochs=1, hidden=8, adversarial=0.5, mixup=0.4), domains=d)
