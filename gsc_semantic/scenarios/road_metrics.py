"""Task metrics of the road scenario: boxes from segmentation masks and detection F1.

A detection is a connected component (8-connectivity) of the vehicle or pedestrian class
in a mask, with at least ``min_pixels`` pixels; its box is the component's extent
(x0, y0, x1, y1; x1/y1 exclusive, as :func:`gsc_semantic.data.road.render_road_scene`).
Predictions match references of the same class greedily by IoU >= 0.5 (highest IoU
first); F1 = 2·TP / (2·TP + FP + FN) pooled over all images.

Example::

    >>> import torch
    >>> m = torch.zeros(8, 8, dtype=torch.long); m[1:3, 1:4] = 3
    >>> boxes_from_mask(m)
    [(3, 1, 1, 4, 3)]
    >>> detection_counts([boxes_from_mask(m)], [[(3, 1, 1, 4, 3)]])
    (1, 0, 0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from gsc_semantic.data.road import PEDESTRIAN, VEHICLE

__all__ = ["Box", "boxes_from_mask", "box_iou", "detection_counts", "f1_score",
           "boxes_from_dataset"]

#: (class, x0, y0, x1, y1)
Box = tuple[int, int, int, int, int]


def boxes_from_mask(mask: torch.Tensor | np.ndarray, min_pixels: int = 2,
                    classes: Sequence[int] = (VEHICLE, PEDESTRIAN)) -> list[Box]:
    """Connected components of ``classes`` in an ``[H, W]`` mask -> boxes."""
    m = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask)
    out: list[Box] = []
    for cls in classes:
        labels, num = ndimage.label(m == cls, structure=np.ones((3, 3), dtype=int))
        for k, sl in enumerate(ndimage.find_objects(labels), start=1):
            if sl is None or int((labels[sl] == k).sum()) < min_pixels:
                continue
            out.append((int(cls), sl[1].start, sl[0].start, sl[1].stop, sl[0].stop))
    return out


def box_iou(a: Box, b: Box) -> float:
    """IoU of two boxes (class ignored)."""
    w = min(a[3], b[3]) - max(a[1], b[1])
    h = min(a[4], b[4]) - max(a[2], b[2])
    inter = max(w, 0) * max(h, 0)
    area = (a[3] - a[1]) * (a[4] - a[2]) + (b[3] - b[1]) * (b[4] - b[2]) - inter
    return inter / area if area > 0 else 0.0


def detection_counts(pred: Sequence[Sequence[Box]], ref: Sequence[Sequence[Box]],
                     iou: float = 0.5) -> tuple[int, int, int]:
    """(TP, FP, FN) over images, greedy same-class matching at IoU >= ``iou``."""
    tp = fp = fn = 0
    for p_boxes, r_boxes in zip(pred, ref, strict=True):
        pairs = sorted(((box_iou(p, r), i, j) for i, p in enumerate(p_boxes)
                        for j, r in enumerate(r_boxes) if p[0] == r[0]), reverse=True)
        used_p, used_r = set(), set()
        for v, i, j in pairs:
            if v >= iou and i not in used_p and j not in used_r:
                used_p.add(i)
                used_r.add(j)
        tp += len(used_p)
        fp += len(p_boxes) - len(used_p)
        fn += len(r_boxes) - len(used_r)
    return tp, fp, fn


def f1_score(tp: int, fp: int, fn: int) -> float:
    """2TP / (2TP + FP + FN); 1.0 when there is nothing to detect and nothing detected."""
    den = 2 * tp + fp + fn
    return 1.0 if den == 0 else 2 * tp / den


def boxes_from_dataset(boxes: torch.Tensor, classes: torch.Tensor, count: int) -> list[Box]:
    """The padded ``boxes``/``box_classes`` of :class:`~gsc_semantic.data.road.RoadScenes`
    -> a box list."""
    return [(int(classes[i]), *(int(v) for v in boxes[i].tolist())) for i in range(count)]
