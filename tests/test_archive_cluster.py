"""The cluster route: two CPU ranks (gloo DDP via Lightning ``Trainer.predict``) write disjoint shard
files whose union is exactly what one process writes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from emovox.archive import ModelSpec, iter_inputs, predict_archive
from emovox.archive_cluster import shard_path
from tests.conftest import REPO
from tests.test_archive import make_clips

SCRIPT = textwrap.dedent('''
    import os
    import sys
    from pathlib import Path
    from emovox.archive import ModelSpec
    from emovox.archive_cluster import predict_cluster

    if __name__ == "__main__":
        folder, model, out = sys.argv[1:4]
        s = predict_cluster([folder, folder + "/nomatch*.wav"], [], out, ModelSpec(model=model, vad="none"), devices=2,
                            progress=False)
        # one file per rank: two processes printing to one pipe can interleave their lines
        rank = os.environ.get("LOCAL_RANK", "0")
        (Path(out).parent.parent / f"summary{rank}").write_text(f"{s.ok} {s.failed} {s.predicted} {s.skipped}")
''')


@pytest.mark.slow
def test_two_gloo_ranks_union_equals_single_process_output(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "clips"
    make_clips(folder, 11, seconds=0.3)
    single = tmp_path / "single.jsonl"
    predict_archive(iter_inputs([str(folder), str(folder) + "/nomatch*.wav"]), single,
                    ModelSpec(model=str(tiny_model), vad="none"), progress=False)
    script = tmp_path / "cluster.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_FORK": "1", "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    env.pop("LOCAL_RANK", None)
    out = tmp_path / "shards" / "r.jsonl"
    cmd = [sys.executable, str(script), str(folder), str(tiny_model), str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    shards = [shard_path(out, r, 2) for r in (0, 1)]
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.rank00000-of00002.jsonl", "r.rank00001-of00002.jsonl"]
    r0, r1 = (p.read_text().splitlines() for p in shards)
    assert len(r0) == 7 and len(r1) == 6  # 11 clips + broken.wav + the pattern that matches nothing
    assert not set(r0) & set(r1)
    assert sorted(r0 + r1) == sorted(single.read_text().splitlines())

    # a re-run resumes each shard: nothing left to do, files unchanged
    before = [p.read_bytes() for p in shards]
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [p.read_bytes() for p in shards] == before
    summaries = [(tmp_path / f"summary{r}").read_text().split() for r in (0, 1)]
    assert sorted(int(x[-1]) for x in summaries) == [6, 7] and all(x[2] == "0" for x in summaries)  # all skipped, none predicted
