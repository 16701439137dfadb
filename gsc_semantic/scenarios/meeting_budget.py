"""Channel uses for equal landmark error: gsc vs H.264 through the same link (issue #6).

At one Es/N0, both methods are run at several rates on the same clip through the same
simulated link, every frame counted:

- **H.264** (:class:`~.meeting_h264.H264Link`): a sweep of bandwidth ratios; at each, the
  lowest CRF whose stream fits, sent on the MCS genie link adaptation picks for the SNR
  (losses included). Points where not even CRF 51 fits send nothing and are left out.
- **gsc** (:class:`~.meeting.GscMeeting`): a set of settings (:class:`GscSetting`: keypoint
  coefficients and step, WebP quality of the reference, which is sent once and amortised
  over the clip's frames) under two MCS policies: ``robust`` (everything on MCS 1, as the
  SNR-agnostic default design) and ``link-adapted`` (keypoints on the MCS the H.264 baseline
  gets, the reference with 3 dB margin: the MCS link adaptation picks for ``snr - 3``).

Each point has the channel uses per frame actually sent (reference included) and the NME
of the landmark model on the shown frames. For each gsc point, :func:`channel_uses_for_nme`
interpolates (log-linear in channel uses) the H.264 channel uses that first reach the gsc
point's NME; ``ratio`` = H.264 / gsc channel uses (issue target: >= 10). When H.264's
lowest-rate point already reaches it, the ratio is computed at that point and flagged
``h264_bound = "lowest_point"`` (H.264 needs at most that); when no H.264 point reaches it,
``ratio`` is ``None`` and ``ratio_lower_bound`` uses H.264's highest-rate point.

Example::

    >>> pts = [{"channel_uses_per_frame": 100.0, "nme": 0.3},
    ...        {"channel_uses_per_frame": 400.0, "nme": 0.1}]
    >>> round(channel_uses_for_nme(pts, 0.2)[0], 1)
    200.0
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import matplotlib
import numpy as np

from gsc_semantic.scenarios.common import markdown_table, save_figure

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["GscSetting", "GSC_SETTINGS", "H264_CHANNEL_USES", "MCS_POLICIES",
           "channel_uses_for_nme", "compare", "h264_points", "gsc_points", "policy_mcs",
           "sweep", "plot_equal_nme", "equal_nme_markdown", "write_outputs",
           "COMPARE_COLUMNS"]

#: H.264 budgets swept, channel uses per 64x64 frame (``ρ = cu / (3·64·64)``).
H264_CHANNEL_USES = (40, 60, 80, 100, 130, 170, 230, 320, 500, 1000, 2000, 4000)
MCS_POLICIES = ("link-adapted", "robust")
ROBUST_MCS = 1
REFERENCE_MARGIN_DB = 3.0
COMPARE_COLUMNS = ("snr_db", "policy", "setting", "bits_per_frame", "channel_uses_per_frame",
                   "nme", "h264_channel_uses_per_frame", "ratio", "h264_bound")


@dataclass(frozen=True)
class GscSetting:
    """One gsc operating point: ``components`` coefficients quantised with ``step``
    (inter-ocular units) on every ``interval``-th frame, the reference as WebP at
    ``reference_quality``."""

    components: int = 6
    step: float = 0.1
    interval: int = 2
    reference_quality: int = 30

    def __str__(self) -> str:
        return (f"K={self.components} step={self.step:g} every {self.interval} "
                f"ref q{self.reference_quality}")


#: The gsc settings swept: the default codec (14.5 bits per frame) at four reference
#: qualities, keypoints on every frame (29 bits), and a lean codec (4 coefficients on every
#: third frame: 7 bits per frame, two frames of delay) with two reference qualities.
GSC_SETTINGS = (GscSetting(6, 0.1, 2, 5), GscSetting(6, 0.1, 2, 15), GscSetting(6, 0.1, 2, 30),
                GscSetting(6, 0.1, 2, 60), GscSetting(6, 0.1, 1, 30),
                GscSetting(4, 0.12, 3, 5), GscSetting(4, 0.12, 3, 15))


def channel_uses_for_nme(points: Sequence[dict], target: float
                         ) -> tuple[float | None, str]:
    """Channel uses per frame at which a method first reaches NME ``target``.

    :param points: dicts with ``channel_uses_per_frame`` and ``nme`` (any order).
    :return: ``(channel uses, bound)``: ``bound`` is ``"interpolated"`` (between the last
        point above and the first at or below the target, log-linear in channel uses),
        ``"lowest_point"`` (the lowest-rate point already reaches it: at most that) or
        ``"not_reached"`` (``None``: no point reaches it).
    """
    pts = sorted(points, key=lambda p: p["channel_uses_per_frame"])
    for i, p in enumerate(pts):
        if p["nme"] <= target:
            if i == 0:
                return float(p["channel_uses_per_frame"]), "lowest_point"
            lo = pts[i - 1]
            f = (lo["nme"] - target) / (lo["nme"] - p["nme"])
            a = math.log(lo["channel_uses_per_frame"])
            b = math.log(p["channel_uses_per_frame"])
            return float(math.exp(a + f * (b - a))), "interpolated"
    return None, "not_reached"


def compare(gsc: Sequence[dict], h264: Sequence[dict]) -> list[dict]:
    """For each gsc point, the H.264 channel uses for the same NME and the ratio
    (see the module notes)."""
    out = []
    top = max((p["channel_uses_per_frame"] for p in h264), default=None)
    for g in gsc:
        need, bound = channel_uses_for_nme(h264, g["nme"])
        cu = g["channel_uses_per_frame"]
        row = {k: g[k] for k in ("snr_db", "policy", "setting", "bits_per_frame",
                                 "channel_uses_per_frame", "nme")}
        row |= {"h264_channel_uses_per_frame": None if need is None else round(need, 1),
                "ratio": None if need is None else round(need / cu, 3), "h264_bound": bound}
        if need is None and top is not None:
            row["ratio_lower_bound"] = round(top / cu, 3)
        out.append(row)
    return out


def h264_points(frames: np.ndarray, true_lm: np.ndarray, landmark_net, channel: str,
                snr_db: float, seed: int = 0, channel_uses=H264_CHANNEL_USES,
                transport=None) -> list[dict]:
    """H.264 through the link at ``snr_db`` for each budget (channel uses per frame).

    :return: one dict per budget where a stream fitted: ``budget``, ``channel_uses_per_frame``
        (as sent), ``bits_per_frame``, ``crf``, ``nme``, ``frames`` (status counts), ``mcs``.
    """
    from gsc_semantic.scenarios.face_landmarks import nme
    from gsc_semantic.scenarios.meeting_h264 import H264Link

    t, size = frames.shape[:2]
    out = []
    for cu in channel_uses:
        res = H264Link(channel, cu / (3 * size * size), seed=seed, transport=transport)(
            frames, snr_db)
        if res.crf is None:
            continue
        lm, _ = landmark_net.detect(res.frames)
        out.append({"method": "h264", "snr_db": float(snr_db), "budget": cu,
                    "channel_uses_per_frame": round(res.channel_uses / t, 2),
                    "bits_per_frame": round(8 * res.bytes_sent / t, 1), "crf": res.crf,
                    "nme": round(float(nme(lm, true_lm).mean()), 4), "frames": res.counts,
                    "mcs": res.mcs})
    return out


def policy_mcs(policy: str, channel: str, snr_db: float) -> tuple[int | str, int | str]:
    """``(keypoint MCS, reference MCS)`` (index or key, e.g. ``"1x4"``) of an MCS policy
    (see the module notes)."""
    from gsc_semantic.baselines import AdaptiveLink

    if policy == "robust":
        return ROBUST_MCS, ROBUST_MCS
    if policy != "link-adapted":
        raise ValueError(f"unknown MCS policy {policy!r}; choose from {MCS_POLICIES}")
    link = AdaptiveLink(channel)
    return (link.choose_mcs(snr_db)[0].key,
            link.choose_mcs(snr_db - REFERENCE_MARGIN_DB)[0].key)


def gsc_points(frames: np.ndarray, true_lm: np.ndarray, lm_tx: np.ndarray,
               present: np.ndarray, decoder, landmark_net, basis, channel: str,
               snr_db: float, seed: int = 0, settings: Sequence[GscSetting] = GSC_SETTINGS,
               policies: Sequence[str] = MCS_POLICIES, transport=None) -> list[dict]:
    """gsc through the link at ``snr_db`` for each setting and MCS policy.

    :return: one dict per point: ``policy``, ``setting``, ``bits_per_frame`` (keypoints +
        reference amortised over the clip), ``channel_uses_per_frame``, ``nme``,
        ``frame_status``, ``reference_delivered``, ``mcs``.
    """
    from gsc_semantic.scenarios.face_landmarks import nme
    from gsc_semantic.scenarios.meeting import GscMeeting
    from gsc_semantic.scenarios.meeting_keypoints import KeypointCodec

    t, size = frames.shape[:2]
    out = []
    for policy in policies:
        kp_mcs, ref_mcs = policy_mcs(policy, channel, snr_db)
        for s in settings:
            codec = KeypointCodec(basis, s.components, s.step, interval=s.interval,
                                  size=size)
            g = GscMeeting(frames, lm_tx, present, decoder, channel, 1.0, codec,
                           link=transport, mcs=kp_mcs, reference_mcs=ref_mcs,
                           reference_quality=s.reference_quality)
            shown, rec = g(snr_db, seed)
            lm, _ = landmark_net.detect(shown)
            out.append({"method": "gsc", "snr_db": float(snr_db), "policy": policy,
                        "setting": str(s), **asdict(s),
                        "bits_per_frame": round(g.bits_per_frame, 1),
                        "keypoint_bits_per_frame": round(codec.bits_per_frame(t), 2),
                        "reference_bytes": g.ref_bytes,
                        "channel_uses_per_frame": round(g.channel_uses_per_frame, 2),
                        "nme": round(float(nme(lm, true_lm).mean()), 4),
                        "frame_status": rec["frame_status"],
                        "reference_delivered": rec["reference_delivered"],
                        "mcs": rec["mcs"]})
    return out


def sweep(frames: np.ndarray, true_lm: np.ndarray, lm_tx: np.ndarray, present: np.ndarray,
          decoder, landmark_net, basis, channel: str, snrs: Sequence[float], seed: int = 0,
          settings: Sequence[GscSetting] = GSC_SETTINGS,
          h264_channel_uses: Sequence[float] = H264_CHANNEL_USES, transport=None,
          extra_gsc: Sequence[dict] = ()) -> dict:
    """H.264 and gsc points at every SNR and their comparison (see the module notes).

    :param extra_gsc: further gsc points to compare (e.g. the scenario run's own).
    :return: ``{"frames", "reference_amortised_over_frames", "snrs", "h264", "gsc",
        "comparison", "best"}``; ``best`` holds, per SNR, the comparison row with the
        highest ratio.
    """
    h264, gsc, comparison, best = [], [], [], {}
    for snr in snrs:
        h = h264_points(frames, true_lm, landmark_net, channel, snr, seed, h264_channel_uses,
                        transport)
        g = gsc_points(frames, true_lm, lm_tx, present, decoder, landmark_net, basis, channel,
                       snr, seed, settings, transport=transport)
        g += [p for p in extra_gsc if p["snr_db"] == snr]
        rows = compare(g, h)
        h264 += h
        gsc += g
        comparison += rows
        rated = [r for r in rows if r["ratio"] is not None]
        if rated:
            best[f"{snr:g}"] = max(rated, key=lambda r: r["ratio"])
    return {"frames": len(frames), "reference_amortised_over_frames": len(frames),
            "snrs": [float(s) for s in snrs], "h264": h264, "gsc": gsc,
            "comparison": comparison, "best": best}


def plot_equal_nme(doc: dict, path: str, title: str = "") -> str:
    """NME vs channel uses per frame (log x), one panel per SNR: the H.264 sweep as a line,
    gsc points by MCS policy."""
    snrs = doc["snrs"]
    fig, axes = plt.subplots(1, len(snrs), figsize=(5 * len(snrs), 3.8), squeeze=False)
    for ax, snr in zip(axes[0], snrs, strict=True):
        h = sorted((p["channel_uses_per_frame"], p["nme"]) for p in doc["h264"]
                   if p["snr_db"] == snr)
        if h:
            ax.plot(*zip(*h, strict=True), "s--", color="C1", label="H.264")
        for i, policy in enumerate(sorted({p["policy"] for p in doc["gsc"]})):
            g = [(p["channel_uses_per_frame"], p["nme"]) for p in doc["gsc"]
                 if p["snr_db"] == snr and p["policy"] == policy]
            if g:
                ax.plot(*zip(*g, strict=True), "o", color=f"C{2 * i}",
                        label=f"gsc ({policy})")
        ax.set_xscale("log")
        ax.set_xlabel("channel uses per frame (reference amortised)")
        ax.set_ylabel("landmark NME (lower better)")
        ax.set_title(f"Es/N0 {snr:g} dB", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    return save_figure(fig, path, title)


def equal_nme_markdown(doc: dict) -> str:
    """The comparison rows as a markdown table, then the H.264 sweep."""
    h_cols = ("snr_db", "budget", "channel_uses_per_frame", "bits_per_frame", "crf", "nme",
              "delivered", "mcs")
    h_rows = [p | {"delivered": p["frames"].get("delivered", 0)} for p in doc["h264"]]
    return (f"gsc vs H.264 for equal NME ({doc['frames']} frames; the reference is "
            f"amortised over {doc['reference_amortised_over_frames']} frames)\n\n"
            + markdown_table(doc["comparison"], COMPARE_COLUMNS) + "\n\nH.264 sweep\n\n"
            + markdown_table(h_rows, h_cols) + "\n")


def write_outputs(doc: dict, out_dir: str, name: str, title: str = "") -> list[str]:
    """``OUT/NAME.md`` (tables) and ``OUT/NAME.png`` (plot); returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    md = os.path.join(out_dir, f"{name}.md")
    with open(md, "w") as fh:
        fh.write(equal_nme_markdown(doc))
    return [md, plot_equal_nme(doc, os.path.join(out_dir, f"{name}.png"), title)]
