"""A folder of photographs gsc never trained on, for ``gsc eval --data DIR``.

The sample photographs that ship inside pinned packages of ``.venv`` (scikit-image,
scikit-learn, matplotlib): none of them is in the KDE / lomiri wallpapers that the photo
codec's prior, student and mean image were built from. Copies them (sha256 listed) into
``--out`` and prints JSON.

    .venv/bin/python benchmarks/unseen_photos.py --out runs/unseen-photos
    .venv/bin/gsc eval --data runs/unseen-photos --snr=-5:20:5 --ratio 1/48 --trials 4
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil

#: (package, path inside it) of each photograph; artwork, diagrams and textures left out
PHOTOS = (
    ("skimage", "data/astronaut.png"),
    ("skimage", "data/camera.png"),
    ("skimage", "data/chelsea.png"),
    ("skimage", "data/coffee.png"),
    ("skimage", "data/hubble_deep_field.jpg"),
    ("skimage", "data/motorcycle_left.png"),
    ("skimage", "data/retina.jpg"),
    ("skimage", "data/rocket.jpg"),
    ("sklearn", "datasets/images/china.jpg"),
    ("sklearn", "datasets/images/flower.jpg"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
)


def collect(out_dir: str) -> list[dict]:
    os.makedirs(out_dir, exist_ok=True)
    got = []
    for package, rel in PHOTOS:
        spec = importlib.util.find_spec(package)
        src = os.path.join(os.path.dirname(spec.origin), rel) if spec else None
        if not src or not os.path.isfile(src):
            raise SystemExit(f"unseen_photos: {package}/{rel} is missing (make setup)")
        dst = os.path.join(out_dir, f"{package}-{os.path.basename(rel)}")
        shutil.copyfile(src, dst)
        with open(dst, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        got.append({"file": dst, "source": f"{package}/{rel}", "sha256": digest})
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/unseen-photos")
    args = ap.parse_args()
    print(json.dumps({"benchmark": "unseen_photos", "photos": collect(args.out)}, indent=2))


if __name__ == "__main__":
    main()
