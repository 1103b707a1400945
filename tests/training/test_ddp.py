"""Two CPU processes (gloo DDP through Lightning) train a few steps and end with identical parameters.

(Batch-norm running statistics are buffers: DDP copies rank 0's into every rank at each forward, so
after the last step they differ by that step's update; GPU runs use SyncBatchNorm.)"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

SCRIPT = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import torch
    import lightning as L
    from emovox.config import OptimConfig, TrainConfig
    from emovox.models.registry import build_model
    from emovox.training.data import FeatureDataset, FoldData, make_augmenter
    from emovox.training.module import EmotionModule

    if __name__ == "__main__":
        torch.set_num_threads(1)
        out = Path(sys.argv[1])
        L.seed_everything(0, verbose=False)
        g = torch.Generator().manual_seed(0)
        feats = [torch.randn(40 + 3 * i, 16, generator=g) for i in range(24)]
        train = FeatureDataset(feats, [i % 3 for i in range(24)], make_augmenter("conservative"))
        model = build_model("resnet34", 3, n_mels=16, base_channels=2, embed_dim=8)
        seen = []

        class Spy(L.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                seen.append(batch[2].tolist())

        trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            use_distributed_sampler=False, num_sanity_val_steps=0, callbacks=[Spy()])
        data = FoldData(train, None, TrainConfig(batch_size=4, chunk_frames=[24, 32]), copies=1, seed=0)
        trainer.fit(EmotionModule(model, OptimConfig(lr=0.05), ["a", "b", "c"]), datamodule=data)
        rank = trainer.global_rank
        torch.save({k: v.detach().clone() for k, v in model.named_parameters()}, out / f"rank{rank}.pt")
        (out / f"seen{rank}.json").write_text(json.dumps({"world": trainer.world_size, "batches": seen}))
''')


@pytest.mark.slow
def test_two_gloo_processes_end_with_identical_parameters(tmp_path: Path) -> None:
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1"}
    env.pop("LOCAL_RANK", None)
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), f"{k} differs between ranks"
    s0, s1 = (json.loads((tmp_path / f"seen{r}.json").read_text()) for r in (0, 1))
    assert s0["world"] == s1["world"] == 2
    assert len(s0["batches"]) == len(s1["batches"]) > 0  # same number of steps on both ranks
    # each rank trained on its own shard of every epoch's batches
    first0, first1 = set(s0["batches"][0]), set(s1["batches"][0])
    assert first0 != first1
    from emovox.models.registry import build_model

    torch.manual_seed(0)
    fresh = dict(build_model("resnet34", 3, n_mels=16, base_channels=2, embed_dim=8).named_parameters())
    assert any(not torch.equal(fresh[k], r0[k]) for k in fresh)  # training moved them
