"""Feature stores: npy and HDF5 readers, their checks, the converter and the real I3D clips."""

from __future__ import annotations

import multiprocessing
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from logo_tal.data.annotations import load_annotations
from logo_tal.data.feature_store import (
    FeatureFileError,
    H5FeatureStore,
    NpyFeatureStore,
    convert_npy_to_h5,
    open_feature_store,
)


@pytest.fixture
def npy_dir(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    for vid, t in (("a", 7), ("b", 12)):
        np.save(tmp_path / f"v_{vid}.npy", rng.random((t, 8), dtype=np.float32))
    return tmp_path


def test_npy_store(npy_dir):
    store = NpyFeatureStore(npy_dir, prefix="v_", input_dim=8)
    assert "a" in store and "zz" not in store
    assert store.video_ids() == ["a", "b"]
    x = store.load("b")
    assert x.shape == (12, 8) and x.dtype == np.float32
    assert store.shape("a") == (7, 8) and store.length("b") == 12


def test_npy_and_h5_give_the_same_samples(npy_dir, tmp_path):
    dst = tmp_path / "out" / "feats.h5"
    assert convert_npy_to_h5(npy_dir, dst, prefix="v_") == 2
    npy = NpyFeatureStore(npy_dir, prefix="v_", input_dim=8)
    h5 = open_feature_store(dst, prefix="v_", input_dim=8)
    assert isinstance(h5, H5FeatureStore)
    assert h5.video_ids() == npy.video_ids()
    for vid in npy.video_ids():
        np.testing.assert_array_equal(h5.load(vid), npy.load(vid))
        assert h5.shape(vid) == npy.shape(vid)


def test_synthetic_npy_equals_h5(tiny_npy, tiny_h5):
    npy = open_feature_store(tiny_npy / "features")
    h5 = open_feature_store(tiny_h5 / "features.h5")
    ids = npy.video_ids()
    assert ids == h5.video_ids() and len(ids) == 10
    for vid in ids:
        np.testing.assert_array_equal(npy.load(vid), h5.load(vid))


def test_open_store_from_directory_with_one_h5(npy_dir, tmp_path):
    convert_npy_to_h5(npy_dir, tmp_path / "h5dir" / "x.hdf5", prefix="v_")
    store = open_feature_store(tmp_path / "h5dir", format="h5", prefix="v_")
    assert store.load("a").shape == (7, 8)
    assert isinstance(open_feature_store(npy_dir), NpyFeatureStore)


_FORKED_STORE: H5FeatureStore | None = None


def _load_in_forked_child(queue, video: str) -> None:
    queue.put(_FORKED_STORE.load(video))


def test_h5_store_works_after_pickling_and_in_a_forked_worker(npy_dir, tmp_path):
    global _FORKED_STORE
    convert_npy_to_h5(npy_dir, tmp_path / "f.h5", prefix="v_")
    store = H5FeatureStore(tmp_path / "f.h5", prefix="v_")
    expected = store.load("a")  # the parent now holds an open handle
    clone = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(clone.load("a"), expected)
    # A forked DataLoader worker inherits the open handle; it must open its own.
    _FORKED_STORE = store
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_load_in_forked_child, args=(queue, "b"))
    child.start()
    got = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(got, np.load(npy_dir / "v_b.npy"))
    np.testing.assert_array_equal(store.load("a"), expected)  # the parent's handle still works
    store.close()


# --------------------------------------------------------------- bad inputs, one each
def _npy(tmp_path, arr) -> NpyFeatureStore:
    np.save(tmp_path / "vid_bad.npy", arr)
    return NpyFeatureStore(tmp_path, input_dim=8)


def test_wrong_dimension(tmp_path):
    with pytest.raises(FeatureFileError, match=r"vid_bad\.npy.*dimension 6 != input_dim 8"):
        _npy(tmp_path, np.zeros((5, 6), np.float32)).load("vid_bad")


def test_transposed_file_is_named(tmp_path):
    with pytest.raises(FeatureFileError, match=r"vid_bad\.npy.*transposed"):
        _npy(tmp_path, np.zeros((8, 30), np.float32)).load("vid_bad")


def test_nan(tmp_path):
    arr = np.zeros((5, 8), np.float32)
    arr[2, 3] = np.nan
    with pytest.raises(FeatureFileError, match=r"vid_bad\.npy: 1 NaN/Inf"):
        _npy(tmp_path, arr).load("vid_bad")


def test_inf(tmp_path):
    arr = np.zeros((5, 8), np.float32)
    arr[0, 0] = np.inf
    with pytest.raises(FeatureFileError, match=r"vid_bad\.npy: 1 NaN/Inf"):
        _npy(tmp_path, arr).load("vid_bad")


def test_empty(tmp_path):
    with pytest.raises(FeatureFileError, match=r"vid_bad\.npy: empty"):
        _npy(tmp_path, np.zeros((0, 8), np.float32)).load("vid_bad")


def test_not_2d(tmp_path):
    with pytest.raises(FeatureFileError, match=r"vid_bad\.npy: expected a 2-D"):
        _npy(tmp_path, np.zeros((5,), np.float32)).load("vid_bad")


def test_corrupt_npy(tmp_path):
    (tmp_path / "vid_bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(FeatureFileError, match=r"vid_bad\.npy: unreadable") as err:
        NpyFeatureStore(tmp_path).load("vid_bad")
    assert "\n" not in str(err.value)


def test_truncated_npy(tmp_path):
    np.save(tmp_path / "vid_bad.npy", np.ones((50, 8), np.float32))
    data = (tmp_path / "vid_bad.npy").read_bytes()
    (tmp_path / "vid_bad.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(FeatureFileError, match=r"vid_bad\.npy: unreadable"):
        NpyFeatureStore(tmp_path).load("vid_bad")


def test_corrupt_h5(tmp_path):
    (tmp_path / "bad.h5").write_bytes(b"not an hdf5 file at all")
    with pytest.raises(FeatureFileError, match=r"bad\.h5: unreadable HDF5"):
        H5FeatureStore(tmp_path / "bad.h5").load("x")


def test_h5_missing_key_and_nan(tmp_path):
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["v_nan"] = np.full((3, 8), np.nan, np.float32)
    store = H5FeatureStore(tmp_path / "f.h5", prefix="v_", input_dim=8)
    with pytest.raises(FeatureFileError, match=r"f\.h5\[v_zz\]: no such dataset"):
        store.load("zz")
    with pytest.raises(FeatureFileError, match=r"f\.h5\[v_nan\]: 24 NaN/Inf"):
        store.load("nan")


def test_missing_file(tmp_path):
    with pytest.raises(FeatureFileError, match=r"vid_gone\.npy: feature file not found"):
        NpyFeatureStore(tmp_path).load("vid_gone")
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        open_feature_store(tmp_path / "no_such_dir")


# --------------------------------------------------------------- real clips
def test_real_i3d_clips(shared_data: Path):
    clips = shared_data / "i3d_clips"
    db = load_annotations(clips / "gt.json", log_problems=False)
    store = NpyFeatureStore(clips, input_dim=2048)
    shapes = {vid: store.load(vid).shape for vid in db.videos}
    assert shapes == {"highjump": (164, 2048), "tennis26": (89, 2048)}
    assert db.class_names[11] == "HighJump" and db.class_names[17] == "TennisSwing"
    assert (store.load("highjump") >= 0).all()
