"""Every IEMOCAP recipe (padi2021, padi2022 speech, xi2019) runs end to end on the miniature
IEMOCAP tree, with tiny widths, one fold and one epoch (overrides), from tiny speaker backbones
pretrained on a miniature VoxCeleb tree. Also: every shipped recipe file validates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emovox.config import load_recipe
from emovox.testing.trees import make_iemocap_tree, make_voxceleb_tree
from emovox.training.experiment import run_experiment
from emovox.training.speaker import pretrain_speaker

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
LOGMEL_TINY = ["features.n_mels=24", "model.options.base_channels=2", "model.options.embed_dim=8"]
RESNET20_TINY = ["model.options.widths=[4,8,16]", "model.options.stem_channels=4"]
COMMON = ["train.epochs=1", "train.batch_size=8", "train.progress=false", "data.folds=[0]", "augment.copies=1"]


def tiny(recipe: Path) -> list[str]:
    size = RESNET20_TINY if "xi2019" in str(recipe) else LOGMEL_TINY
    chunks = [] if "ablation_sp" in recipe.name else ["train.chunk_frames=[20,30]"]
    if "ablation_sp" in recipe.name:
        chunks = ["train.chunk_frames=[40]", "train.eval_frames=40"]
    return size + chunks + COMMON


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("recipes")
    vox = make_voxceleb_tree(base / "vox", n_speakers=3, videos_per_speaker=1, utts_per_video=2)
    out = {"base": base, "iemocap": make_iemocap_tree(base / "iemocap"), "cache": base / "cache"}
    backbones = {  # backbone name in the recipes -> (speaker recipe, extra overrides)
        "resnet34-voxceleb": (RECIPES / "padi2021/exp1_loso.yaml", LOGMEL_TINY + ["train.chunk_frames=[20,30]"]),
        "resnet34-voxceleb-nopool": (RECIPES / "padi2021/ablation_sp.yaml",
                                     LOGMEL_TINY + ["train.chunk_frames=[40]", "train.eval_frames=40"]),
        "resnet20-voxceleb2-50": (RECIPES / "xi2019/speaker_resnet20.yaml", RESNET20_TINY),
        "resnet20-adapters-voxceleb2-50": (RECIPES / "xi2019/speaker_resnet20_adapters.yaml", RESNET20_TINY),
    }
    for name, (recipe, extra) in backbones.items():
        r = load_recipe(recipe, extra + ["train.epochs=1", "train.progress=false", "transfer.mode=scratch",
                                         "transfer.backbone=null", "data.manifest=null", "data.corpus=voxceleb",
                                         f"data.root={vox}", "data.labels=null", "data.corpus_args={}",
                                         f"features.cache_dir={out['cache']}", "features.vad=false",
                                         "augment.policy=none"])
        pretrain_speaker(r, base / "speaker" / name, progress=False)
        out[name] = base / "speaker" / name / "backbone"
    return out


def test_every_recipe_file_validates() -> None:
    files = sorted(RECIPES.glob("padi2021/*.yaml")) + sorted(RECIPES.glob("xi2019/*.yaml")) + \
        sorted(RECIPES.glob("padi2022/speech_*.yaml")) + sorted(RECIPES.glob("emodb/*.yaml")) + \
        sorted(RECIPES.glob("ravdess/*.yaml"))
    assert len(files) >= 17
    for f in files:
        load_recipe(f)


IEMOCAP = sorted(RECIPES.glob("padi2021/*.yaml")) + sorted(RECIPES.glob("padi2022/speech_*.yaml")) + \
    [RECIPES / f"xi2019/{n}.yaml" for n in ("plain", "feature_extractor", "fine_tune", "residual_adapter", "adapter_only")]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", IEMOCAP, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_iemocap_recipe_smoke(env: dict[str, Path], tmp_path: Path, recipe: Path) -> None:
    overrides = tiny(recipe) + [f"data.root={env['iemocap']}", f"features.cache_dir={env['cache']}"]
    r = load_recipe(recipe, overrides)
    if r.transfer.backbone is not None:
        name = Path(r.transfer.backbone).parent.name
        r = load_recipe(recipe, overrides + [f"transfer.backbone={env[name]}"])
    summary = run_experiment(r, tmp_path / "run", progress=False)
    assert summary["n_folds"] == 1 and 0.0 <= summary["metrics"]["ua"]["mean"] <= 1.0
    assert summary["labels"] == ["angry", "happy", "neutral", "sad"] or summary["labels"] == \
        ["angry", "excited", "neutral", "sad"]
    assert (next((tmp_path / "run").glob("fold_00_*")) / "model" / "model.safetensors").is_file()


HEADS = sorted(RECIPES.glob("emodb/*_head.yaml")) + sorted(RECIPES.glob("ravdess/*_head.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("recipe", HEADS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_upstream_head_recipes_run_on_the_iemocap_fixture(env: dict[str, Path], tmp_path: Path, recipe: Path) -> None:
    """The Whisper/GE2E head recipes end to end (real frozen upstream, one fold, one epoch) with the
    data section pointed at the miniature IEMOCAP tree."""
    assert len(HEADS) == 4
    r = load_recipe(recipe, ["data.corpus=iemocap", f"data.root={env['iemocap']}", "data.labels=iemocap_exp1",
                             "data.protocol=loso", "data.protocol_args={}", f"features.cache_dir={env['cache']}",
                             "train.chunk_frames=[10,12]", *COMMON])
    summary = run_experiment(r, tmp_path / "run", progress=False)
    fold = next((tmp_path / "run").glob("fold_00_*"))
    assert summary["n_folds"] == 1 and (fold / "scores.json").is_file()
    from emovox.models.io import load_model

    model, config = load_model(fold / "model")
    assert config["frontend"] == {"name": "upstream", "kwargs": {"upstream": r.features.frontend,
                                                                 "options": dict(r.features.options)}}
    assert model.in_features == (384 if "whisper" in recipe.name else 256)
    assert not torch.all(model.feature_scale == 1)  # standardisation was fitted
    # the exported fold model predicts from audio with the very upstream it was trained on
    from emovox import Recognizer

    wav = next(env["iemocap"].rglob("*.wav"))
    p = Recognizer.load(fold / "model", vad=None).predict(str(wav))  # fixture audio is not speech
    assert p.error is None and abs(sum(p.probabilities.values()) - 1) < 1e-4
    assert set(p.probabilities) == set(config["labels"])
