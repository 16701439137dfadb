"""Datasets: offline sources, deterministic splits, ground truth consistent with pixels."""

import gzip
import os
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from gsc_semantic import data as D
from gsc_semantic.data import faces as Fc
from gsc_semantic.data import fmnist as Fm
from gsc_semantic.data import road as R

FMNIST_PRESENT = os.path.isfile(os.path.join(Fm.FMNIST_DEFAULT_DIR,
                                             "t10k-labels-idx1-ubyte.gz"))
WALLPAPERS_PRESENT = os.path.isdir(os.path.join("/usr/share/wallpapers", "Path"))
needs_fmnist = pytest.mark.skipif(not FMNIST_PRESENT, reason="dataset-fashion-mnist missing")
needs_wallpapers = pytest.mark.skipif(not WALLPAPERS_PRESENT,
                                      reason="plasma-workspace-wallpapers missing")



def _write_idx(path, arr: np.ndarray, code: int = 0x08) -> None:
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)


# --- idx parsing and Fashion-MNIST --------------------------------------------------------


def test_read_idx_parses_header_and_rejects_bad_files(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", arr)
    _write_idx(tmp_path / "a.raw", arr)
    assert np.array_equal(D.read_idx(str(tmp_path / "a.gz")), arr)
    assert np.array_equal(D.read_idx(str(tmp_path / "a.raw")), arr)
    ints = np.array([1, -2, 70000], dtype=np.int32)
    _write_idx(tmp_path / "i.gz", ints, code=0x0C)
    assert D.read_idx(str(tmp_path / "i.gz")).tolist() == [1, -2, 70000]
    (tmp_path / "bad.raw").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="magic"):
        D.read_idx(str(tmp_path / "bad.raw"))
    (tmp_path / "short.raw").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"ab")
    with pytest.raises(ValueError, match="data bytes"):
        D.read_idx(str(tmp_path / "short.raw"))


def test_fmnist_env_override_and_missing_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for part, n in (("train", 30), ("t10k", 7)):
        _write_idx(tmp_path / f"{part}-images-idx3-ubyte.gz",
                   rng.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        _write_idx(tmp_path / f"{part}-labels-idx1-ubyte.gz",
                   (np.arange(n) % 10).astype(np.uint8))
    monkeypatch.setenv("GSC_FMNIST_DIR", str(tmp_path))
    assert len(D.FashionMNIST("test")) == 7
    tr, va = D.FashionMNIST("train", val_size=5), D.FashionMNIST("val", val_size=5)
    assert (len(tr), len(va)) == (25, 5)
    monkeypatch.setenv("GSC_FMNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="GSC_FMNIST_DIR"):
        D.FashionMNIST("test")


@needs_fmnist
def test_fmnist_real_files_splits_and_values(monkeypatch):
    monkeypatch.delenv("GSC_FMNIST_DIR", raising=False)
    tr, va, te = (D.FashionMNIST(s, seed=0) for s in ("train", "val", "test"))
    assert (len(tr), len(va), len(te)) == (55000, 5000, 10000)
    assert set(tr.indices.tolist()).isdisjoint(va.indices.tolist())
    assert len(set(tr.indices.tolist()) | set(va.indices.tolist())) == 60000
    # official test set: 1000 images per class
    _, labels = Fm.load_fmnist_arrays("test")
    assert np.bincount(labels).tolist() == [1000] * 10
    item = te[0]
    assert item["image"].shape == (1, 28, 28) and item["image"].dtype == torch.float32
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert float(item["image"].max()) > 0.5 and int(item["label"]) == 9  # ankle boot
    # deterministic by seed, different across seeds
    assert torch.equal(D.FashionMNIST("val", seed=0).indices, va.indices)
    assert not torch.equal(D.FashionMNIST("val", seed=1).indices, va.indices)
    big = D.FashionMNIST("test", size=32)[0]["image"]
    assert big.shape == (1, 32, 32)
    batch = next(iter(DataLoader(te, batch_size=16)))
    assert batch["image"].shape == (16, 1, 28, 28) and batch["label"].shape == (16,)


# --- photographs ----------------------------------------------------------------------------


@needs_wallpapers
def test_photo_sources_all_load_offline():
    names = D.photo_sources()
    assert len(names) == 20 and sum(n.startswith("wallpaper:") for n in names) == 11
    for n in names:
        img = D.load_photo(n, 128)
        assert img.dtype == torch.uint8 and img.shape[0] == 3 and min(img.shape[1:]) == 128
        assert float(img.float().std()) > 10  # not blank


@needs_wallpapers
def test_photo_splits_are_by_source_and_deterministic():
    splits = {s: D.PhotoCrops(s, size=64, seed=0) for s in D.SPLITS}
    srcs = {s: set(ds.source_names) for s, ds in splits.items()}
    assert (len(srcs["train"]), len(srcs["val"]), len(srcs["test"])) == (13, 3, 4)
    assert srcs["test"].isdisjoint(srcs["train"]) and srcs["val"].isdisjoint(srcs["train"])
    assert srcs["test"].isdisjoint(srcs["val"])
    assert srcs["train"] | srcs["val"] | srcs["test"] == set(D.photo_sources())
    assert set(D.PhotoCrops("test", seed=0).source_names) == srcs["test"]
    assert set(D.PhotoCrops("test", seed=3).source_names) != srcs["test"]

    test = splits["test"]
    assert 60 <= len(test) <= 100  # 16-24 grid crops per photo
    a, b = test[5]["image"], D.PhotoCrops("test", size=64, seed=0)[5]["image"]
    assert torch.equal(a, b) and a.shape == (3, 64, 64)
    # grid crops are distinct pieces of the photo, not flat texture
    stack = torch.stack([test[i]["image"] for i in range(len(test))])
    assert float(stack.min()) >= 0 and float(stack.max()) <= 1
    assert float(stack.flatten(1).std(1).median()) > 0.03


@needs_wallpapers
def test_photo_train_crops_random_but_reproducible():
    tr = D.PhotoCrops("train", size=32, seed=0, crops_per_image=4)
    assert len(tr) == 4 * 13
    first = tr[7]["image"]
    assert torch.equal(first, D.PhotoCrops("train", size=32, seed=0, crops_per_image=4)[7][
        "image"])
    tr.set_epoch(1)
    assert not torch.equal(first, tr[7]["image"])
    assert tr[7]["image"].shape == (3, 32, 32)
    # photos were downscaled to 4 x size on the short side before cropping
    assert min(tr._photos[0].shape[1:]) == 128
    with pytest.raises(IndexError):
        tr[len(tr)]


# --- procedural road scenes -----------------------------------------------------------------


def test_road_scene_deterministic_and_collates():
    ds = D.RoadScenes("test", size=64, seed=0, length=20)
    a, b = ds[3], D.RoadScenes("test", size=64, seed=0, length=20)[3]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not torch.equal(a["image"], D.RoadScenes("train", seed=0)[3]["image"])
    assert not torch.equal(a["image"], D.RoadScenes("test", seed=1)[3]["image"])
    batch = next(iter(DataLoader(ds, batch_size=5)))
    assert batch["image"].shape == (5, 3, 64, 64) and batch["mask"].shape == (5, 64, 64)
    assert batch["boxes"].shape == (5, 8, 4) and batch["box_classes"].shape == (5, 8)


def test_road_ground_truth_matches_pixels():
    ds = D.RoadScenes("val", size=64, seed=0, length=40)
    seen = set()
    lane_brighter = 0
    for i in range(len(ds)):
        s = ds[i]
        img, mask = s["image"], s["mask"]
        assert mask.dtype == torch.int64 and int(mask.max()) < len(D.ROAD_CLASSES)
        assert (mask == R.ROAD).any()
        seen |= set(mask.unique().tolist())
        k = int(s["num_boxes"])
        assert (s["box_classes"][k:] == -1).all() and (s["boxes"][k:] == 0).all()
        covered = torch.zeros_like(mask, dtype=torch.bool)
        for box, cls in zip(s["boxes"][:k], s["box_classes"][:k], strict=True):
            x0, y0, x1, y1 = (int(v) for v in box)
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
            region = mask[y0:y1, x0:x1]
            assert (region == cls).any()
            # the box is tight: its border rows/columns touch the object
            assert (region[0] == cls).any() or (region[-1] == cls).any()
            covered[y0:y1, x0:x1] |= region == cls
        objects = (mask == R.VEHICLE) | (mask == R.PEDESTRIAN)
        assert bool(covered[objects].all())  # every object pixel lies in a box of its class
        # asphalt is neutral grey; lane paint is brighter than the road around it
        road = img[:, mask == R.ROAD]
        assert float((road.max(0).values - road.min(0).values).mean()) < 0.12
        lane = img[:, mask == R.LANE]
        if lane.shape[1] >= 5:
            lane_brighter += float(lane.mean()) > float(road.mean()) + 0.1
    assert seen == {0, 1, 2, 3, 4}
    assert lane_brighter >= 20


# --- procedural faces -----------------------------------------------------------------------


def _lum(img: np.ndarray, xy) -> float:
    x, y = (int(np.floor(v)) for v in xy)
    return float(img[y, x].astype(float).mean())


def test_face_landmarks_sit_on_the_drawn_features():
    for i in range(12):
        p = Fc.sample_face_params(np.random.default_rng([7, i]))
        p |= {"eye_open": 1.0, "skin": 0, "mouth_open": 0.0}  # light skin, open eyes
        img, lm = Fc.render_face(p, size=128)
        assert lm.shape == (12, 2) and bool(((lm >= 0) & (lm <= 128)).all())
        skin = _lum(img, (lm[0][0], lm[6][1]))  # cheek below the left eye
        for e in (0, 1):  # pupils/irises are dark
            assert _lum(img, lm[e]) < skin - 60, (i, e)
        # the mouth lies between its landmarks: lips darker than the skin
        centre = (lm[9] + lm[10]) / 2
        assert _lum(img, centre) < skin - 30, i
        for m in (7, 8):  # lips within 2 px of each corner
            x, y = (int(v) for v in lm[m])
            near = img[y - 2:y + 3, x - 2:x + 3].astype(float).mean(-1)
            assert near.min() < skin - 30, (i, m)


def test_face_pose_and_expression_move_landmarks_as_documented():
    base = Fc.sample_face_params(np.random.default_rng(0)) | {
        "yaw_deg": 0.0, "pitch_deg": 0.0, "roll_deg": 0.0, "smile": 0.0, "brow_raise": 0.0,
        "mouth_open": 0.0}
    idx = {n: i for i, n in enumerate(Fc.FACE_LANDMARKS)}

    def lm(**kw):
        return Fc.render_face(base | kw, size=64)[1]

    neutral = lm()
    assert abs(neutral[idx["eye_left"], 1] - neutral[idx["eye_right"], 1]) < 1e-3
    right = lm(yaw_deg=25.0)  # turns towards image right: nose tip moves right
    assert right[idx["nose_tip"], 0] > neutral[idx["nose_tip"], 0] + 1
    roll = lm(roll_deg=15.0)  # clockwise: the image-right eye goes down
    assert roll[idx["eye_right"], 1] > roll[idx["eye_left"], 1] + 1
    down = lm(pitch_deg=12.0)
    assert down[idx["nose_tip"], 1] > neutral[idx["nose_tip"], 1] + 0.5
    smile, frown = lm(smile=1.0), lm(smile=-1.0)
    assert smile[idx["mouth_left"], 1] < smile[idx["mouth_top"], 1]
    assert frown[idx["mouth_left"], 1] > frown[idx["mouth_top"], 1]
    raised = lm(brow_raise=1.0)
    assert raised[idx["brow_left_outer"], 1] < neutral[idx["brow_left_outer"], 1] - 0.5
    opened = lm(mouth_open=1.0)
    assert opened[idx["mouth_bottom"], 1] > neutral[idx["mouth_bottom"], 1] + 1


def test_faces_dataset_items():
    ds = D.SyntheticFaces("train", size=64, seed=0, length=10)
    s = ds[4]
    assert s["image"].shape == (3, 64, 64) and s["landmarks"].shape == (12, 2)
    assert s["params"].shape == (len(D.FACE_PARAM_NAMES),)
    assert torch.equal(s["image"], D.SyntheticFaces("train", size=64, seed=0)[4]["image"])
    assert not torch.equal(s["image"], D.SyntheticFaces("val", size=64, seed=0)[4]["image"])
    yaw, pitch, roll = s["params"][:3].tolist()
    assert -30 <= yaw <= 30 and -15 <= pitch <= 15 and -20 <= roll <= 20
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["landmarks"].shape == (4, 12, 2)


# --- image folders and the registry --------------------------------------------------------


def _make_folder(root):
    rng = np.random.default_rng(0)
    (root / "cats" / "deep").mkdir(parents=True)
    (root / "dogs").mkdir()
    Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(
        root / "cats" / "rgb.png")
    Image.fromarray(rng.integers(0, 255, (70, 70), dtype=np.uint8), "L").save(
        root / "cats" / "deep" / "gray.jpg")
    rgba = np.zeros((64, 96, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 48:, 3] = 255  # left half transparent
    Image.fromarray(rgba, "RGBA").save(root / "dogs" / "alpha.png")
    Image.fromarray(rng.integers(0, 255, (66, 66, 3), dtype=np.uint8)).convert(
        "P", palette=Image.Palette.ADAPTIVE).save(root / "dogs" / "pal.gif")
    Image.fromarray((rng.integers(0, 65535, (64, 64))).astype(np.uint16)).save(
        root / "root16.png")
    (root / "notes.txt").write_text("not an image")


def test_image_folder_converts_modes_and_labels(tmp_path):
    _make_folder(tmp_path)
    ds = D.load_dataset(str(tmp_path), "all", size=64)
    assert isinstance(ds, D.ImageFolderDataset)
    assert ds.classes == ("cats", "dogs") and len(ds) == 5
    by_name = {f: i for i, f in enumerate(ds.files)}
    labels = {f: int(ds[i]["label"]) for f, i in by_name.items()}
    assert labels[os.path.join("cats", "deep", "gray.jpg")] == 0
    assert labels[os.path.join("dogs", "pal.gif")] == 1 and labels["root16.png"] == -1
    for i in range(len(ds)):
        x = ds[i]["image"]
        assert x.shape == (3, 64, 64) and 0 <= float(x.min()) and float(x.max()) <= 1
    alpha = ds[by_name[os.path.join("dogs", "alpha.png")]]["image"]
    assert float(alpha[:, :, :8].min()) > 0.97  # transparent -> white
    assert alpha[0, :, -8:].mean() == pytest.approx(200 / 255, abs=0.02)
    assert float(alpha[1:, :, -8:].max()) < 0.02
    gray = ds[by_name[os.path.join("cats", "deep", "gray.jpg")]]["image"]
    assert torch.allclose(gray[0], gray[1]) and torch.allclose(gray[1], gray[2])
    sixteen = ds[by_name["root16.png"]]["image"]
    assert 0.3 < float(sixteen.mean()) < 0.7  # 16-bit rescaled, not clipped to white


def test_image_folder_refuses_bad_files_naming_them(tmp_path):
    _make_folder(tmp_path)
    (tmp_path / "dogs" / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match="broken.png"):
        D.ImageFolderDataset(str(tmp_path), size=64)
    (tmp_path / "dogs" / "broken.png").unlink()
    Image.new("RGB", (40, 90)).save(tmp_path / "cats" / "tiny.png")
    with pytest.raises(ValueError, match=r"tiny\.png is 40x90"):
        D.ImageFolderDataset(str(tmp_path), size=64)
    assert len(D.ImageFolderDataset(str(tmp_path), size=32)) == 6
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        D.ImageFolderDataset(str(empty))


def test_image_folder_splits_partition_files(tmp_path):
    for i in range(20):
        Image.new("RGB", (40, 40), (i * 10, 0, 0)).save(tmp_path / f"{i:02d}.png")
    parts = {s: D.ImageFolderDataset(str(tmp_path), s, size=32, seed=0).files
             for s in D.SPLITS}
    assert sum(len(v) for v in parts.values()) == 20
    assert len(set(parts["train"]) | set(parts["val"]) | set(parts["test"])) == 20
    assert (len(parts["val"]), len(parts["test"])) == (2, 2)
    tr = D.ImageFolderDataset(str(tmp_path), "train", size=32, seed=0)
    assert torch.equal(tr[0]["image"], tr[0]["image"])


def test_load_dataset_registry(tmp_path):
    assert isinstance(D.load_dataset("road", "val", length=3), D.RoadScenes)
    faces = D.load_dataset("faces", "test", size=48, seed=2, length=3)
    assert faces[0]["image"].shape == (3, 48, 48)
    if FMNIST_PRESENT:
        assert D.load_dataset("fmnist", "test").size == 28
    if WALLPAPERS_PRESENT:
        assert D.load_dataset("photos", "val")[0]["image"].shape == (3, 64, 64)
    with pytest.raises(ValueError, match="unknown dataset"):
        D.load_dataset("imagenet")
    with pytest.raises(ValueError, match="split"):
        D.load_dataset("road", "all")
