"""Test helpers shipped with the package: miniature corpus trees in the official layouts.

>>> from emovox.testing import make_iemocap_tree
>>> root = make_iemocap_tree(tmp_path / "IEMOCAP_full_release")   # doctest: +SKIP
"""

from emovox.testing.trees import (
    IEMOCAP_REAL_COUNTS,
    IEMOCAP_SMALL_COUNTS,
    make_ased_tree,
    make_cremad_tree,
    make_emodb_tree,
    make_iemocap_tree,
    make_nemo_tree,
    make_ravdess_tree,
    make_tess_tree,
    make_voxceleb_tree,
    tone,
)

__all__ = [
    "IEMOCAP_REAL_COUNTS",
    "IEMOCAP_SMALL_COUNTS",
    "make_ased_tree",
    "make_cremad_tree",
    "make_emodb_tree",
    "make_iemocap_tree",
    "make_nemo_tree",
    "make_ravdess_tree",
    "make_tess_tree",
    "make_voxceleb_tree",
    "tone",
]
