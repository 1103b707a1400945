"""Evaluation protocols: deterministic train/valid/test folds that never leak a speaker.

Every generator returns a list of :class:`Fold` (utterance-id lists) and runs
:func:`check_fold` on each one, so a fold whose train and test share a speaker raises
:class:`ProtocolError`. The validation part is always drawn from the training side only:
whole training speakers are held out (``valid_fraction`` of them, at least one) so validation
is speaker-disjoint from train; only when the training side has a single speaker does it fall
back to an utterance-level split (logged). The one deliberate exception is
:func:`ratio_split` with ``speaker_dependent=True`` (to replicate seed 002's random 8:1:1
split), which logs a warning and marks its fold ``speaker_independent=False``.

Same inputs and seed give the same folds; save them next to the results with
:func:`save_folds`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from emovox.corpora.manifest import Utterance
from emovox.errors import ProtocolError
from emovox.io import atomic_write_json, read_json

log = logging.getLogger(__name__)

SPEAKER_DEPENDENT_WARNING = (
    "speaker-DEPENDENT split: the same speakers appear in train and test, so scores are optimistic "
    "and not comparable with speaker-independent results (use only to replicate seed 002)"
)


@dataclass
class Fold:
    """One train/valid/test partition given as utterance ids."""

    name: str
    train: list[str]
    valid: list[str]
    test: list[str]
    speaker_independent: bool = True
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Fold":
        try:
            return cls(str(d["name"]), list(d["train"]), list(d["valid"]), list(d["test"]),
                       bool(d.get("speaker_independent", True)), dict(d.get("info", {})))
        except (KeyError, TypeError) as exc:
            raise ProtocolError(f"fold entry is missing field {exc} (need name, train, valid, test)") from None

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "Fold":
        return cls.from_dict(read_json(path))

    def parts(self, utterances: Sequence[Utterance]) -> tuple[list[Utterance], list[Utterance], list[Utterance]]:
        """The (train, valid, test) utterances of this fold."""
        from emovox.corpora.manifest import select

        return select(utterances, self.train), select(utterances, self.valid), select(utterances, self.test)


# -------------------------------------------------------------------------------- checking
def check_fold(fold: Fold, utterances: Sequence[Utterance]) -> Fold:
    """Raise :class:`ProtocolError` if ``fold`` leaks or is malformed; return it unchanged."""
    speaker = {u.id: u.speaker for u in utterances}
    parts = {"train": fold.train, "valid": fold.valid, "test": fold.test}
    for part, ids in parts.items():
        unknown = [i for i in ids if i not in speaker]
        if unknown:
            raise ProtocolError(f"fold {fold.name!r}: {part} has {len(unknown)} id(s) not in the manifest, e.g. {unknown[0]!r}")
        if len(set(ids)) != len(ids):
            raise ProtocolError(f"fold {fold.name!r}: {part} lists an utterance twice")
    if not fold.train or not fold.test:
        raise ProtocolError(f"fold {fold.name!r}: empty {'train' if not fold.train else 'test'} part")
    sets = {p: set(ids) for p, ids in parts.items()}
    for a, b in (("train", "test"), ("train", "valid"), ("valid", "test")):
        both = sets[a] & sets[b]
        if both:
            raise ProtocolError(f"fold {fold.name!r}: utterance {sorted(both)[0]!r} is in both {a} and {b}")
    if fold.speaker_independent:
        spk = {p: {speaker[i] for i in ids} for p, ids in parts.items()}
        for a, b in (("train", "test"), ("valid", "test")):
            shared = spk[a] & spk[b]
            if shared:
                raise ProtocolError(
                    f"fold {fold.name!r}: speaker(s) {sorted(shared)} in both {a} and {b} — a speaker leak; "
                    "evaluation must be speaker-independent"
                )
    return fold


# ---------------------------------------------------------------------------------- helpers
def _natural_key(s: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _ids(utts: Iterable[Utterance]) -> list[str]:
    return [u.id for u in utts]


def session_of(u: Utterance) -> str:
    """The recording session: ``extra['session']`` if set, else ``group``, else the speaker."""
    return str(u.extra.get("session") or u.group or u.speaker)


def _split_valid(train: list[Utterance], valid_fraction: float, rng: np.random.Generator,
                 fold_name: str) -> tuple[list[Utterance], list[Utterance], dict[str, Any]]:
    """Hold out whole training speakers (speaker-disjoint) as the validation part."""
    if valid_fraction <= 0:
        return train, [], {"valid_speakers": []}
    speakers = sorted({u.speaker for u in train}, key=_natural_key)
    if len(speakers) >= 2:
        n = min(len(speakers) - 1, max(1, int(round(valid_fraction * len(speakers)))))
        chosen = set(rng.choice(speakers, size=n, replace=False).tolist())
        valid = [u for u in train if u.speaker in chosen]
        rest = [u for u in train if u.speaker not in chosen]
        return rest, valid, {"valid_speakers": sorted(chosen, key=_natural_key)}
    log.warning("fold %s: only one training speaker, validation drawn from its utterances (not speaker-disjoint)",
                fold_name)
    return _stratified_take(train, valid_fraction, rng) + ({"valid_speakers": speakers},)


def _stratified_take(utts: list[Utterance], fraction: float, rng: np.random.Generator) -> tuple[list[Utterance], list[Utterance]]:
    """Split utterances (per label, shuffled) into (rest, taken) with ``fraction`` taken."""
    taken: set[str] = set()
    for label in sorted({u.label for u in utts}):
        ids = [u.id for u in utts if u.label == label]
        rng.shuffle(ids)
        taken.update(ids[: int(round(fraction * len(ids)))])
    return [u for u in utts if u.id not in taken], [u for u in utts if u.id in taken]


def _fold(name: str, train: list[Utterance], test: list[Utterance], utterances: Sequence[Utterance],
          valid_fraction: float, seed: int, index: int, info: dict[str, Any]) -> Fold:
    rng = np.random.default_rng([seed, index])
    train, valid, vinfo = _split_valid(train, valid_fraction, rng, name)
    info = {**info, **vinfo, "test_speakers": sorted({u.speaker for u in test}, key=_natural_key)}
    return check_fold(Fold(name, _ids(train), _ids(valid), _ids(test), True, info), utterances)


# -------------------------------------------------------------------------------- protocols
def leave_one_group_out(utterances: Sequence[Utterance], key: Callable[[Utterance], str],
                        valid_fraction: float = 0.1, seed: int = 0, protocol: str = "leave_one_group_out") -> list[Fold]:
    """One fold per value of ``key`` (held out as test); train = all other values."""
    groups = sorted({key(u) for u in utterances}, key=_natural_key)
    if len(groups) < 2:
        raise ProtocolError(f"{protocol}: need at least 2 groups, found {groups}")
    folds = []
    for i, g in enumerate(groups):
        test = [u for u in utterances if key(u) == g]
        train = [u for u in utterances if key(u) != g]
        folds.append(_fold(f"test-{g}", train, test, utterances, valid_fraction, seed, i,
                           {"protocol": protocol, "test_groups": [g]}))
    return folds


def leave_one_session_out(utterances: Sequence[Utterance], valid_fraction: float = 0.1, seed: int = 0) -> list[Fold]:
    """IEMOCAP LOSO: 5 folds, each holding out one session (its 2 speakers)."""
    return leave_one_group_out(utterances, session_of, valid_fraction, seed, "leave_one_session_out")


def leave_one_speaker_out(utterances: Sequence[Utterance], valid_fraction: float = 0.1, seed: int = 0) -> list[Fold]:
    """One fold per speaker (EmoDB: 10 folds)."""
    return leave_one_group_out(utterances, lambda u: u.speaker, valid_fraction, seed, "leave_one_speaker_out")


def leave_k_speakers_out(utterances: Sequence[Utterance], k: int = 4, valid_fraction: float = 0.1,
                         seed: int = 0, shuffle: bool = False) -> list[Fold]:
    """Folds of ``k`` consecutive speakers in natural order (RAVDESS: 6 folds of 4 actors, 2 m + 2 f).

    ``shuffle=True`` permutes the speakers with ``seed`` first. A remainder forms a smaller last fold.
    """
    speakers = sorted({u.speaker for u in utterances}, key=_natural_key)
    if k < 1 or k >= len(speakers):
        raise ProtocolError(f"leave_k_speakers_out: k={k} must be between 1 and {len(speakers) - 1} "
                            f"(the manifest has {len(speakers)} speakers)")
    if shuffle:
        speakers = [speakers[i] for i in np.random.default_rng(seed).permutation(len(speakers))]
    if len(speakers) % k:
        log.warning("leave_k_speakers_out: %d speakers not divisible by k=%d, last fold is smaller", len(speakers), k)
    folds = []
    for i in range(0, len(speakers), k):
        held = set(speakers[i:i + k])
        test = [u for u in utterances if u.speaker in held]
        train = [u for u in utterances if u.speaker not in held]
        folds.append(_fold(f"fold{i // k + 1}", train, test, utterances, valid_fraction, seed, i // k,
                           {"protocol": "leave_k_speakers_out", "k": k}))
    return folds


def speaker_kfold(utterances: Sequence[Utterance], n_folds: int = 5, valid_fraction: float = 0.1,
                  seed: int = 0) -> list[Fold]:
    """``n_folds``-fold CV (5 folds = 80/20, seed 000's ablations) with speaker-disjoint folds.

    Speakers are assigned with scikit-learn's ``StratifiedGroupKFold`` (shuffled with ``seed``), so
    each test part holds whole speakers and roughly the overall class balance.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    speakers = sorted({u.speaker for u in utterances})
    if len(speakers) < n_folds:
        raise ProtocolError(f"speaker_kfold: {n_folds} speaker-disjoint folds need at least {n_folds} speakers, "
                            f"the manifest has {len(speakers)}")
    labels = [u.label for u in utterances]
    groups = [u.speaker for u in utterances]
    cv = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = []
    for i, (tr, te) in enumerate(cv.split(np.zeros(len(labels)), labels, groups)):
        train = [utterances[j] for j in tr]
        test = [utterances[j] for j in te]
        folds.append(_fold(f"fold{i + 1}", train, test, utterances, valid_fraction, seed, i,
                           {"protocol": "speaker_kfold", "n_folds": n_folds}))
    return folds


def ratio_split(utterances: Sequence[Utterance], ratios: Sequence[float] = (8, 1, 1), seed: int = 0,
                speaker_dependent: bool = False) -> list[Fold]:
    """One train:valid:test split (seed 002 uses 8:1:1).

    Speaker-independent (default): whole speakers, shuffled with ``seed``, fill test then valid up to
    their share of utterances (at least one speaker each). ``speaker_dependent=True`` splits
    utterances per label at random instead (seed 002's setting) and logs a warning.
    """
    if len(ratios) != 3 or min(ratios) < 0 or ratios[0] <= 0 or ratios[2] <= 0:
        raise ProtocolError(f"ratio_split: ratios must be 3 numbers train:valid:test with train, test > 0, got {ratios}")
    total = float(sum(ratios))
    f_valid, f_test = ratios[1] / total, ratios[2] / total
    rng = np.random.default_rng(seed)
    utts = list(utterances)
    if speaker_dependent:
        log.warning(SPEAKER_DEPENDENT_WARNING)
        rest, test = _stratified_take(utts, f_test, rng)
        train, valid = _stratified_take(rest, f_valid / (1 - f_test), rng) if f_valid else (rest, [])
        fold = Fold("split", _ids(train), _ids(valid), _ids(test), False,
                    {"protocol": "ratio_split", "ratios": list(ratios), "warning": SPEAKER_DEPENDENT_WARNING})
        return [check_fold(fold, utterances)]
    speakers = sorted({u.speaker for u in utts}, key=_natural_key)
    need = 2 + (1 if f_valid > 0 else 0)
    if len(speakers) < need:
        raise ProtocolError(f"ratio_split: a speaker-independent split needs at least {need} speakers, found "
                            f"{len(speakers)} (pass speaker_dependent=True only to replicate seed 002)")
    order = [speakers[i] for i in rng.permutation(len(speakers))]
    count = {s: sum(1 for u in utts if u.speaker == s) for s in speakers}
    test_spk = _take_speakers(order[: len(order) - need + 1], count, f_test * len(utts))
    remaining = [s for s in order if s not in test_spk]
    valid_spk = _take_speakers(remaining[:-1], count, f_valid * len(utts)) if f_valid > 0 else set()
    test = [u for u in utts if u.speaker in test_spk]
    valid = [u for u in utts if u.speaker in valid_spk]
    train = [u for u in utts if u.speaker not in test_spk | valid_spk]
    info = {"protocol": "ratio_split", "ratios": list(ratios),
            "test_speakers": sorted(test_spk, key=_natural_key), "valid_speakers": sorted(valid_spk, key=_natural_key)}
    return [check_fold(Fold("split", _ids(train), _ids(valid), _ids(test), True, info), utterances)]


def _take_speakers(order: list[str], count: dict[str, int], target: float) -> set[str]:
    """Speakers from the front of ``order`` (at least one) until their count is closest to ``target``."""
    chosen: set[str] = set()
    n = 0
    for s in order:
        if chosen and abs(n + count[s] - target) >= abs(n - target):
            break
        chosen.add(s)
        n += count[s]
    return chosen


def leave_one_corpus_out(utterances: Sequence[Utterance], valid_fraction: float = 0.1, seed: int = 0,
                         held_out: Sequence[str] | None = None) -> list[Fold]:
    """Cross-corpus folds: one per corpus (``Utterance.corpus``), held out whole as the test part.

    Train = every other corpus. Validation = whole speakers held out from the training side,
    drawn per training corpus (``round(valid_fraction * its speakers)``, at most all but one; a
    corpus with few speakers such as TESS may give none), so model selection sees every training
    corpus but never the test corpus; if the rounding leaves no validation speaker at all, one
    speaker of the largest training corpus is used. Speaker independence is asserted here (train,
    valid and test speakers pairwise disjoint) on top of :func:`check_fold`, so a speaker id shared
    by two corpora raises :class:`ProtocolError`. ``held_out`` limits which corpora get a fold
    (all still train the others). ``info`` records ``test_corpus``, ``train_corpora``,
    ``test_labels`` (the labels the held-out corpus has, sorted) and the validation speakers.
    """
    utts = list(utterances)
    missing = [u.id for u in utts if not u.corpus]
    if missing:
        raise ProtocolError(f"leave_one_corpus_out: {len(missing)} utterance(s) have no 'corpus' field, e.g. "
                            f"{missing[0]!r} (fill the manifest's corpus column, or load with emovox.corpora)")
    corpora = sorted({u.corpus for u in utts}, key=_natural_key)
    if len(corpora) < 2:
        raise ProtocolError(f"leave_one_corpus_out: need at least 2 corpora, the manifest has {corpora}")
    targets = corpora if held_out is None else list(held_out)
    unknown = [c for c in targets if c not in corpora]
    if unknown or not targets:
        raise ProtocolError(f"leave_one_corpus_out: held_out {unknown or targets} not among the manifest's "
                            f"corpora {corpora}")
    if not 0 <= valid_fraction < 1:
        raise ProtocolError(f"leave_one_corpus_out: valid_fraction must be in [0, 1), got {valid_fraction}")
    folds = []
    for i, name in enumerate(corpora):
        if name not in targets:
            continue
        test = [u for u in utts if u.corpus == name]
        train = [u for u in utts if u.corpus != name]
        rng = np.random.default_rng([seed, i])
        valid_spk = _corpus_valid_speakers(train, valid_fraction, rng)
        valid = [u for u in train if u.speaker in valid_spk]
        train = [u for u in train if u.speaker not in valid_spk]
        spk = {p: {u.speaker for u in part} for p, part in (("train", train), ("valid", valid), ("test", test))}
        for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
            if spk[a] & spk[b]:
                raise ProtocolError(f"leave_one_corpus_out, fold test-{name}: speaker(s) {sorted(spk[a] & spk[b])[:5]} "
                                    f"in both {a} and {b}; speaker ids must be unique across corpora (prefix them "
                                    "with the corpus name, as the nemo/ased loaders do)")
        info = {"protocol": "leave_one_corpus_out", "test_corpus": name,
                "train_corpora": [c for c in corpora if c != name],
                "test_labels": sorted({u.label for u in test}),
                "valid_speakers": sorted(valid_spk, key=_natural_key),
                "test_speakers": sorted(spk["test"], key=_natural_key)}
        folds.append(check_fold(Fold(f"test-{name}", _ids(train), _ids(valid), _ids(test), True, info), utts))
    return folds


def _corpus_valid_speakers(train: list[Utterance], fraction: float, rng: np.random.Generator) -> set[str]:
    """Validation speakers drawn per training corpus (see :func:`leave_one_corpus_out`)."""
    if fraction <= 0:
        return set()
    by_corpus: dict[str, list[str]] = {}
    for u in train:
        speakers = by_corpus.setdefault(u.corpus, [])
        if u.speaker not in speakers:
            speakers.append(u.speaker)
    chosen: set[str] = set()
    for corpus in sorted(by_corpus, key=_natural_key):
        speakers = sorted(by_corpus[corpus], key=_natural_key)
        n = min(len(speakers) - 1, int(round(fraction * len(speakers))))
        if n > 0:
            chosen.update(rng.choice(speakers, size=n, replace=False).tolist())
    if not chosen:
        largest = max(sorted(by_corpus, key=_natural_key), key=lambda c: len(by_corpus[c]))
        speakers = sorted(by_corpus[largest], key=_natural_key)
        if len(speakers) >= 2:
            chosen.add(str(rng.choice(speakers)))
        else:
            log.warning("leave_one_corpus_out: no training corpus has 2 speakers; no validation part")
    return chosen


def predefined_split(utterances: Sequence[Utterance], key: str = "split", train: str = "train",
                     valid: str = "dev", test: str = "test") -> list[Fold]:
    """The corpus's own split stored in ``extra[key]`` (MELD train/dev/test).

    Raises :class:`ProtocolError` if it shares speakers between train and test (MELD does: the same
    TV characters appear everywhere); use it for text models where speaker identity is irrelevant
    via ``make_folds(..., 'predefined', allow_speaker_overlap=True)``.
    """
    return _predefined(utterances, key, train, valid, test, allow_speaker_overlap=False)


def _predefined(utterances: Sequence[Utterance], key: str, train: str, valid: str, test: str,
                allow_speaker_overlap: bool) -> list[Fold]:
    parts = {p: [u.id for u in utterances if str(u.extra.get(key)) == p] for p in (train, valid, test)}
    if allow_speaker_overlap:
        log.warning("predefined split: the corpus's own train/dev/test parts share speakers, so results "
                    "are not speaker-independent")
    fold = Fold("predefined", parts[train], parts[valid], parts[test], not allow_speaker_overlap,
                {"protocol": "predefined", "key": key})
    return [check_fold(fold, utterances)]


PROTOCOLS: dict[str, Callable[..., list[Fold]]] = {
    "leave_one_session_out": leave_one_session_out,
    "loso": leave_one_session_out,
    "leave_one_speaker_out": leave_one_speaker_out,
    "leave_k_speakers_out": leave_k_speakers_out,
    "speaker_kfold": speaker_kfold,
    "kfold": speaker_kfold,
    "ratio_split": ratio_split,
    "leave_one_corpus_out": leave_one_corpus_out,
    "split": ratio_split,
    "predefined": lambda utts, allow_speaker_overlap=False, key="split", train="train", valid="dev", test="test",
    seed=0: _predefined(utts, key, train, valid, test, allow_speaker_overlap),
}


def make_folds(utterances: Sequence[Utterance], protocol: str, **kwargs: Any) -> list[Fold]:
    """Folds by protocol name (see :data:`PROTOCOLS`); keyword arguments go to the generator."""
    if protocol not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {protocol!r} (choose from: {', '.join(sorted(PROTOCOLS))})")
    try:
        return PROTOCOLS[protocol](list(utterances), **kwargs)
    except TypeError as exc:
        raise ProtocolError(f"protocol {protocol!r}: bad option ({exc})") from None


# ------------------------------------------------------------------------------------- files
def save_folds(path: str | Path, folds: Sequence[Fold], meta: dict[str, Any] | None = None) -> Path:
    """Write folds (and optional metadata: protocol, seed, manifest) as one JSON file, atomically."""
    return atomic_write_json(path, {"meta": dict(meta or {}), "folds": [f.to_dict() for f in folds]})


def load_folds(path: str | Path, utterances: Sequence[Utterance] | None = None) -> list[Fold]:
    """Read folds written by :func:`save_folds`; with ``utterances`` every fold is re-checked."""
    p = Path(path)
    if not p.is_file():
        raise ProtocolError(f"fold file not found: {p}")
    data = read_json(p)
    if not isinstance(data, dict) or not isinstance(data.get("folds"), list):
        raise ProtocolError(f"{p}: not a fold file (expected an object with a 'folds' list)")
    folds = [Fold.from_dict(d) for d in data["folds"]]
    if utterances is not None:
        for f in folds:
            check_fold(f, utterances)
    return folds
