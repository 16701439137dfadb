"""Online-meeting scenario (issue #6): talking-head video as face keypoints + one reference.

**gsc** (transmitter): the in-project landmark model (:mod:`.face_landmarks`) finds the 12
face landmarks of every frame; the first frame with a face is the **reference**, sent once
as a compact WebP (headers the receiver knows left out) plus its landmarks (8 bits per
coordinate) on the most robust MCS (strong protection); then, for every second frame (and
the last), a handful of keypoint coefficients (6 coefficients of a learned basis of face
motion in inter-ocular units, 29 bits: 14.5 bits per frame; :mod:`.meeting_keypoints`) in
two UEP layers through :class:`~.layered_link.LayeredLink` (layer 1: face flag + MSBs on a
robust MCS, layer 2: LSBs on a more fragile one), designed without knowing the SNR. Budget:
every frame owns ``ρ·3·H·W`` channel uses; the keypoint layers get at most
``keypoint_share`` of them, the reference (the highest WebP quality that fits) the rest of
the clip's total, so it is amortised over the clip (reported separately). Frames where no
face is detected send the *no face* flag; the receiver reuses the previous keypoints
(counted as ``frames_without_detection``).

**gsc** (receiver, :mod:`.meeting_decoder`): keypoints interpolated between key frames (one
frame of delay), warp of the reference to them + a trained refinement U-Net; lost keypoint
layers -> previous keypoints; lost reference -> mid-gray frames.

**Baselines** at the same ``ρ`` on the same link, with genie link adaptation per SNR:
H.264 (libx264 through PyAV, :mod:`.meeting_h264`) and per-frame JPEG
(:class:`gsc_semantic.baselines.SeparationBaseline`, freeze-frame on loss), and ``jpeg-ra``,
JPEG at the resolution its transmitter picks by MSE (:mod:`gsc_semantic.resolution_adaptive`).

**Metrics** (:mod:`.meeting_metrics`): NME of the landmark model on the shown frames
against the original's landmarks (exact ones for synthetic clips), PSNR, SSIM,
EfficientNet-Lite2 feature distance, temporal error; channel uses per frame and ρ actually
used. **Channel uses for equal NME** (:mod:`.meeting_budget`, at the comparison SNR: 10 dB
or the nearest below): H.264 swept over budgets and gsc over a few settings, both through
the simulated link; the H.264 channel uses that reach each gsc point's NME, and the ratio
(issue target >= 10), in ``meeting.json["equal_nme"]``, ``meeting_equal_nme.md`` and
``meeting_equal_nme.png``. ``benchmarks/bench_meeting_budget.py`` runs the full sweep (more
settings, 10 and 5 dB).

Example::

    from gsc_semantic.scenarios.common import parse_link
    run_meeting(parse_link("sim"), "awgn", [0.0, 10.0], "runs/meeting", seed=0, frames=16,
                rho=1 / 12, echo=print)
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from bridge.common import ConfigError, checkpoints_root
from gsc_semantic.baselines import (
    AdaptiveLink,
    Encoded,
    decode,
    encode,
    encode_to_fit,
)
from gsc_semantic.resolution_adaptive import codec_baseline
from gsc_semantic.scenarios.common import (
    LinkSpec,
    ReportSection,
    aggregate_trials,
    link_context,
    link_transport,
    plot_vs_snr,
    save_gif,
    save_grid,
    write_html_report,
    write_table,
)
from gsc_semantic.scenarios.face_landmarks import DETECTION_THRESHOLD, LandmarkNet
from gsc_semantic.scenarios.layered_link import LayeredLink
from gsc_semantic.scenarios.meeting_budget import (
    COMPARE_COLUMNS,
    GscSetting,
)
from gsc_semantic.scenarios.meeting_budget import sweep as budget_sweep
from gsc_semantic.scenarios.meeting_budget import write_outputs as write_budget_outputs
from gsc_semantic.scenarios.meeting_clips import SOURCES, Clip, load_clip, synthetic_clip
from gsc_semantic.scenarios.meeting_decoder import MeetingDecoder, RefineUNet
from gsc_semantic.scenarios.meeting_h264 import H264Link
from gsc_semantic.scenarios.meeting_keypoints import (
    DELIVERED_STATUS,
    FRAME_STATUS,
    KeypointBasis,
    KeypointCodec,
)
from gsc_semantic.scenarios.meeting_metrics import FrameMetrics
from gsc_semantic.scenarios.meeting_train import KEYPOINTS_NAME, LANDMARKS_NAME, REFINER_NAME

__all__ = ["run_meeting", "GscMeeting", "load_meeting_clip", "load_models", "METHODS",
           "COLUMNS", "EQUAL_NME_SETTINGS", "meeting_versions"]

METHODS = ("gsc", "h264", "jpeg", "jpeg-ra")
#: the per-frame image-codec baselines (freeze-frame on loss)
CODEC_METHODS = ("jpeg", "jpeg-ra")
COLUMNS = ("method", "snr_db", "nme", "psnr", "ssim", "feature_distance", "temporal_error",
           "channel_uses_per_frame", "rho", "frames_ok", "frames_without_detection", "mcs")
#: Extra columns with ``--trials`` > 1 (95 % Student-t half-widths over the trials).
CI_COLUMNS = ("trials", "nme_ci95", "psnr_ci95", "frames_ok_ci95")
#: Seed offset between channel trials.
TRIAL_SEED_STRIDE = 100_003
REFERENCE_MCS = 1
SIZE = 64
#: gsc settings of the equal-NME sweep inside a scenario run (the benchmark sweeps more).
EQUAL_NME_SETTINGS = (GscSetting(6, 0.1, 2, 15), GscSetting(6, 0.1, 2, 30))


def _ensure_face(clip: Clip, present: np.ndarray) -> None:
    if not present.any():
        raise ConfigError(f"no face found in clip {clip.source!r} (landmark model presence "
                          f"below {DETECTION_THRESHOLD} in all {len(present)} frames)")


def load_meeting_clip(clip: str, frames: int, seed: int, size: int = SIZE) -> Clip:
    """A synthetic clip (:data:`~.meeting_clips.SOURCES`) or a user video/folder."""
    if frames < 2:
        raise ConfigError(f"the meeting scenario needs at least 2 frames, got {frames}")
    if clip in SOURCES:
        return synthetic_clip(clip, frames, size, seed)
    return load_clip(clip, size, frames)


class GscMeeting:
    """gsc's meeting link for one clip (see the module notes).

    :param frames: uint8 [T, H, W, 3]; :param landmarks: the transmitter's landmarks
        [T, 12, 2] and ``present`` [T] flags from the landmark model.
    :param decoder: :class:`~.meeting_decoder.MeetingDecoder`.
    :param channel, rho: link and bandwidth ratio; ``codec``: the
        :class:`~.meeting_keypoints.KeypointCodec`; ``keypoint_share``: the keypoints' share
        of the per-frame budget; ``link``: a transport object (default: simulated), or the
        legacy ``"sim"``/``"loopback"``, or a shared
        :class:`~gsc_semantic.stream_transport.StreamTransport` (see :class:`LayeredLink`).
    :param mcs: ``None``: the SNR-agnostic design (keypoint layers on the UEP ladder that
        fits ``rho·keypoint_share``, reference on MCS :data:`REFERENCE_MCS`); an MCS index
        or key (``"1x4"``): both keypoint layers on it (and the reference on
        ``reference_mcs``, default the same).
    :param reference_quality: ``None``: the reference takes the rest of the clip's budget
        (highest quality that fits); a WebP quality: that quality, whatever it costs.
    """

    def __init__(self, frames: np.ndarray, landmarks: np.ndarray, present: np.ndarray,
                 decoder: MeetingDecoder, channel: str, rho: float, codec: KeypointCodec,
                 keypoint_share: float = 0.5, reference_codec: str = "webp", link=None,
                 mcs: int | str | None = None, reference_mcs: int | str | None = None,
                 reference_quality: int | None = None) -> None:
        t, size = frames.shape[0], frames.shape[1]
        self.codec = codec
        self.decoder = decoder
        self.size = size
        shape = (3, size, size)
        pixels = 3 * size * size
        keys = len(codec.key_frames(t))  # the keypoint links' "images" are the key frames
        if mcs is None:
            self.kp_link = LayeredLink(channel, rho * keypoint_share * t / keys,
                                       codec.layer_bits, "adaptive", link=link,
                                       image_shape=shape)
            reference_mcs = REFERENCE_MCS
        else:
            kp_rho = codec.bits_per_key_frame / _bits_per_channel_use(channel, mcs) / pixels
            self.kp_link = LayeredLink(channel, kp_rho * (1 + 1e-9), codec.layer_bits,
                                       [mcs, mcs], link=link, image_shape=shape)
            reference_mcs = mcs if reference_mcs is None else reference_mcs
        kp_cu = self.kp_link.plan.total_channel_uses * keys / t
        eff = _bits_per_channel_use(channel, reference_mcs)
        self.ref_index = int(np.argmax(present))
        self.reference = frames[self.ref_index]
        self.reference_codec = reference_codec
        image = torch.from_numpy(self.reference).permute(2, 0, 1).float() / 255
        if reference_quality is None:
            ref_bits = int(np.floor(t * (rho * pixels - kp_cu) * eff))
            enc = encode_to_fit(image, reference_codec,
                                max((ref_bits - codec.reference_bits) // 8, 0))
            if enc is None:
                raise ConfigError(f"rho={rho:.4g} leaves {max(ref_bits // 8, 0)} bytes for "
                                  f"the reference frame, too few for a {reference_codec} of "
                                  "it; raise --rho or send more frames")
        else:
            enc = Encoded(reference_codec, reference_quality,
                          encode(image, reference_codec, reference_quality))
        self.ref_bytes = len(enc.data)
        self.ref_quality = enc.quality
        ref_lm_bits = codec.encode_reference(landmarks[self.ref_index])
        self.ref_landmarks = codec.decode_reference(ref_lm_bits)
        payload = np.concatenate([np.unpackbits(np.frombuffer(enc.data, np.uint8)),
                                  ref_lm_bits])
        self.ref_payload = payload
        self.ref_mcs = reference_mcs
        self.ref_link = LayeredLink(channel, payload.size / eff / pixels * (1 + 1e-9),
                                    [payload.size], [reference_mcs], link=link,
                                    image_shape=shape)
        self.layers = codec.encode(landmarks, present, self.ref_landmarks)
        self.present = present
        self.keypoint_cu = kp_cu
        self.reference_cu = self.ref_link.plan.total_channel_uses
        self.frames = t

    @property
    def bits_per_frame(self) -> float:
        """Keypoint bits + the reference's bits (image and landmarks) amortised over the
        clip."""
        return self.codec.bits_per_frame(self.frames) + self.ref_payload.size / self.frames

    @property
    def channel_uses_per_frame(self) -> float:
        """Keypoints + the reference amortised over the clip."""
        return self.keypoint_cu + self.reference_cu / self.frames

    def __call__(self, snr_db: float, seed: int) -> tuple[np.ndarray, dict]:
        """Send and regenerate the clip at ``snr_db``: frames shown and a record."""
        ref_rx = self.ref_link([self.ref_payload[None]], snr_db, seed)
        kp_rx = self.kp_link(list(self.layers), snr_db, seed + 1)
        reference, ref_lm = None, self.ref_landmarks
        if not ref_rx.erased[0, 0]:
            bits = ref_rx.bits[0][0]
            data = np.packbits(bits[:8 * self.ref_bytes]).tobytes()
            img = decode(data, self.reference_codec, (3, self.size, self.size))
            reference = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            ref_lm = self.codec.decode_reference(bits[8 * self.ref_bytes:])
        kp, status = self.codec.decode(kp_rx.bits[0], kp_rx.bits[1], kp_rx.erased[:, 0],
                                       kp_rx.erased[:, 1], ref_lm, self.frames)
        shown = self.decoder(reference, ref_lm, kp, self.size)
        plan = self.kp_link.plan
        record = {"reference_delivered": reference is not None,
                  "reference_codec": self.reference_codec,
                  "reference_bytes": self.ref_bytes, "reference_quality": self.ref_quality,
                  "reference_channel_uses": round(self.reference_cu, 1),
                  "reference_amortised_over_frames": self.frames,
                  "keypoint_channel_uses_per_frame": round(self.keypoint_cu, 1),
                  "keypoint_layer_bits": list(plan.layer_bits),
                  "keypoint_codec": {"components": self.codec.components,
                                     "step_iod": self.codec.step,
                                     "interval": self.codec.interval,
                                     "key_frames": len(self.layers[0]),
                                     "bits_per_component":
                                         list(self.codec.bits_per_component)},
                  "bits_per_frame": round(self.bits_per_frame, 1),
                  "keypoint_plan": plan.to_dict(),
                  "frame_status": {s: status.count(s) for s in FRAME_STATUS},
                  "frames_ok": sum(status.count(s) for s in DELIVERED_STATUS)}
        record["frames_ok"] = record["frames_ok"] if reference is not None else 0
        mcs = [m for m in plan.to_dict()["mcs"] if m]
        record["mcs"] = f"ref MCS{self.ref_mcs}; kp " + " / ".join(mcs)
        return shown, record


def _bits_per_channel_use(channel: str, mcs: int | str) -> float:
    """Payload bits per complex channel use of MCS ``mcs`` (all overheads counted, as in the
    baselines' budgets)."""
    return AdaptiveLink(channel).budget((3, SIZE, SIZE), 0.0, mcs).bits_per_channel_use


def load_models() -> tuple[LandmarkNet, MeetingDecoder, KeypointBasis]:
    """The shipped landmark model, decoder (with its refiner) and keypoint basis."""
    root = checkpoints_root()
    lm = LandmarkNet.from_pretrained(os.path.join(root, LANDMARKS_NAME))
    refiner = RefineUNet.from_pretrained(os.path.join(root, REFINER_NAME))
    basis = KeypointBasis.from_pretrained(os.path.join(root, KEYPOINTS_NAME))
    return lm, MeetingDecoder(refiner), basis


def _strip(frames_by_method: dict[str, np.ndarray], count: int = 6) -> list[torch.Tensor]:
    t = len(next(iter(frames_by_method.values())))
    idx = np.linspace(0, t - 1, min(count, t)).round().astype(int)
    return [torch.from_numpy(f[idx]).permute(0, 3, 1, 2).float() / 255
            for f in frames_by_method.values()]


def _side_by_side_gif(frames_by_method: dict[str, np.ndarray], path: str) -> str:
    t = len(next(iter(frames_by_method.values())))
    pics = []
    for i in range(t):
        row = np.concatenate([f[i] for f in frames_by_method.values()], 1)
        pics.append(Image.fromarray(row).resize((row.shape[1] * 3, row.shape[0] * 3),
                                                Image.Resampling.NEAREST))
    return save_gif(pics, path, ms_per_frame=120)


def run_meeting(link: LinkSpec, channel: str, snrs: list[float], out_dir: str, seed: int,
                frames: int, rho: float, echo=print, clip: str = "procedural",
                keypoint_share: float = 0.5,
                equal_nme_settings: Sequence[GscSetting] = EQUAL_NME_SETTINGS,
                trials: int = 1) -> dict:
    """Run the meeting scenario and write ``OUT/meeting.json``, ``meeting.md``, plots,
    strips, a side-by-side GIF (original | gsc | h264 | jpeg | jpeg-ra) and ``report.html``.

    :param clip: ``procedural``, ``astronaut``, ``grace_hopper``, a video file or a folder of
        frames.
    :param equal_nme_settings: gsc settings of the equal-NME sweep at the comparison SNR
        (:mod:`.meeting_budget`; ``benchmarks/bench_meeting_budget.py`` runs the full one).
    :param trials: independent channel and noise draws per method and SNR; row metrics are
        means over trials with ``<metric>_ci95`` half-widths (one trial: the link's own
        random stream, as before); strips, GIF and ``per_frame`` show trial 0.
    :return: the ``meeting.json`` document.
    """
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    transport = link_transport(link, channel, seed, out_dir, "meeting", echo)
    if not snrs:
        raise ConfigError("give at least one SNR")
    t0 = time.time()
    torch.manual_seed(seed)
    data = load_meeting_clip(clip, frames, seed)
    landmark_net, decoder, basis = load_models()
    lm_tx, conf = landmark_net.detect(data.frames)
    present = conf >= DETECTION_THRESHOLD
    _ensure_face(data, present)
    true_lm = data.landmarks if data.landmarks is not None else lm_tx
    t = len(data.frames)
    echo(f"meeting: clip {data.source!r}, {t} frames, face detected in {int(present.sum())}")
    gsc = GscMeeting(data.frames, lm_tx, present, decoder, channel, rho,
                     KeypointCodec(basis, size=SIZE), keypoint_share, link=transport)
    h264 = H264Link(channel, rho, seed=seed, transport=transport)
    codecs = {c: codec_baseline(c, channel, rho, on_loss="previous", seed=seed,
                                transport=transport) for c in CODEC_METHODS}
    counters = transport.take  # None on the simulated link
    metrics = FrameMetrics(landmark_net)
    budget_cu = rho * 3 * SIZE * SIZE
    rows, strips, gif_frames, details = [], [], None, []
    compare_snr = max([s for s in snrs if s <= 10] or [min(snrs)])
    x = torch.from_numpy(data.frames).permute(0, 3, 1, 2).float() / 255
    for snr in snrs:
        per_trial: dict[str, list[dict]] = {m: [] for m in METHODS}
        for tr in range(trials):
            cs = None if trials == 1 else seed + TRIAL_SEED_STRIDE * (tr + 1)
            sent = {"original": data.frames}
            link_context(transport, "gsc")
            g_frames, g_rec_t = gsc(snr, seed if cs is None else cs)
            streamed_t = {"gsc": counters()}
            sent["gsc"] = g_frames
            link_context(transport, "h264")
            h_t = h264(data.frames, snr, channel_seed=cs)
            streamed_t["h264"] = counters()
            sent["h264"] = h_t.frames
            c_t = {}
            for c, base in codecs.items():
                link_context(transport, c)
                c_t[c] = base(x, snr, channel_seed=cs)
                streamed_t[c] = counters()
                sent[c] = (c_t[c].images.permute(0, 2, 3, 1).numpy() * 255).round().astype(
                    np.uint8)
            ok_t = {"gsc": g_rec_t["frames_ok"], "h264": h_t.counts.get("delivered", 0),
                    **{c: int(sum(r.delivered for r in c_t[c].records)) for c in codecs}}
            for m in METHODS:
                res = metrics(sent[m], data.frames, true_lm)
                per_trial[m].append({"res": res, "frames_ok": ok_t[m],
                                     "loopback": streamed_t[m]})
            if tr == 0:
                shown, g_rec, h, cod, ok = sent, g_rec_t, h_t, c_t, ok_t
        cu = {"gsc": gsc.channel_uses_per_frame, "h264": h.channel_uses / t,
              **{c: float(np.mean([r.channel_uses for r in cod[c].records])) for c in codecs}}
        mcs = {"gsc": g_rec["mcs"], "h264": h.mcs,
               **{c: cod[c].records[0].mcs for c in codecs}}
        for m in METHODS:
            first = per_trial[m][0]["res"]
            stats = aggregate_trials([
                {**{k: v for k, v in p["res"].items() if k != "per_frame"},
                 "frames_ok": p["frames_ok"]} for p in per_trial[m]])
            streamed = [p["loopback"] for p in per_trial[m] if p["loopback"]]
            rows.append({"method": m, "snr_db": float(snr),
                         **{k: (round(v, 4) if isinstance(v, float) else v)
                            for k, v in stats.items()},
                         "channel_uses_per_frame": round(cu[m], 1),
                         "rho": round(cu[m] / (3 * SIZE * SIZE), 5),
                         "frames_without_detection": int((~present).sum()) if m == "gsc"
                         else 0, "mcs": mcs[m], "per_frame": first["per_frame"]}
                        | ({"loopback": _sum_counters(streamed)} if streamed else {}))
        if trials == 1:
            for r in rows[-len(METHODS):]:
                r["frames_ok"] = int(r["frames_ok"])
        details.append({"snr_db": float(snr), "gsc": g_rec,
                        "h264": {"crf": h.crf, "bytes": h.bytes_sent,
                                 "budget_bytes": h.budget_bytes, "frames": h.counts,
                                 "blocks": h.blocks, "blocks_failed": h.blocks_failed},
                        **{c: {"delivered": ok[c],
                               "quality": [r.quality for r in cod[c].records],
                               "resolution": [r.resolution for r in cod[c].records],
                               "budget_bytes": cod[c].budget.payload_bytes}
                           for c in codecs}})
        strips.append((snr, _strip(shown)))
        if snr == compare_snr:
            gif_frames = shown
        echo(f"  Es/N0 {snr:g} dB: " + ", ".join(
            f"{r['method']} NME {r['nme']:.3f} PSNR {r['psnr']:.1f}" for r in rows[-len(METHODS):]))
    transport.close()  # a streamed link's sessions stop here
    gsc_row = next(r for r in rows if r["method"] == "gsc" and r["snr_db"] == compare_snr)
    as_run = {"method": "gsc", "snr_db": compare_snr, "policy": "as run",
              "setting": f"K={gsc.codec.components} step={gsc.codec.step:g} every "
                         f"{gsc.codec.interval} ref fills rho (q{gsc.ref_quality})",
              "bits_per_frame": round(gsc.bits_per_frame, 1),
              "channel_uses_per_frame": gsc_row["channel_uses_per_frame"],
              "nme": gsc_row["nme"]}
    echo(f"meeting: channel uses for equal NME at {compare_snr:g} dB (H.264 and gsc sweeps)")
    equal = budget_sweep(data.frames, true_lm, lm_tx, present, decoder, landmark_net, basis,
                         channel, [compare_snr], seed, settings=equal_nme_settings,
                         extra_gsc=[as_run])
    equal["link"] = "sim"  # the sweep's many runs always use the simulated link
    os.makedirs(out_dir, exist_ok=True)
    grid_paths = []
    for snr, rows_img in strips:
        name = f"meeting_snr{snr:g}.png"
        save_grid(rows_img, os.path.join(out_dir, name), scale=2)
        grid_paths.append(name)
    _side_by_side_gif(gif_frames, os.path.join(out_dir, "meeting.gif"))
    write_budget_outputs(equal, out_dir, "meeting_equal_nme",
                         f"meeting, {channel}, {t} frames of {data.source}")
    plot_vs_snr(rows, {"nme": "landmark NME (lower better)", "psnr": "PSNR [dB]",
                       "feature_distance": "EffNet-Lite2 feature distance",
                       "temporal_error": "temporal error"}, METHODS,
                os.path.join(out_dir, "meeting.png"),
                f"meeting, {channel}, rho={rho:.4g}, {t} frames of {data.source}")
    doc = {"scenario": "meeting", "config": {"link": str(link), "channel": channel,
                                             "snrs": list(map(float, snrs)), "rho": rho,
                                             "frames": t, "clip": data.source,
                                             "trials": trials,
                                             "keypoint_share": keypoint_share,
                                             "budget_channel_uses_per_frame": budget_cu},
           "snr_kind": "esno", "seed": seed, "versions": meeting_versions(),
           "frames_without_detection": int((~present).sum()),
           "rows": rows, "details": details, "equal_nme": equal,
           "seconds": round(time.time() - t0, 1)}
    columns = COLUMNS if trials == 1 else COLUMNS + CI_COLUMNS
    write_table(doc, columns, out_dir, "meeting")
    write_html_report(out_dir, "gsc scenario meeting",
                      f"{t} frames ({data.source}), {channel}, rho = {rho:.4g} "
                      f"({budget_cu:.0f} channel uses per frame), Es/N0 {list(snrs)} dB. "
                      "Columns: original | gsc | H.264 | JPEG.",
                      [ReportSection("Metrics vs SNR", images=["meeting.png", "meeting.gif"],
                                     rows=rows, columns=columns),
                       ReportSection("Frames per SNR", images=grid_paths),
                       ReportSection("Channel uses for equal landmark error",
                                     text=_equal_nme_text(equal, compare_snr),
                                     images=["meeting_equal_nme.png"],
                                     rows=equal["comparison"], columns=COMPARE_COLUMNS)])
    echo(f"meeting: wrote {os.path.join(out_dir, 'meeting.json')} "
         f"({doc['seconds']:.0f} s)")
    return doc


def _equal_nme_text(equal: dict, snr: float) -> str:
    best = equal["best"].get(f"{snr:g}")
    if best is None:
        return f"At {snr:g} dB no gsc point reached an NME that H.264 reaches in its sweep."
    return (f"At {snr:g} dB, best gsc point: {best['setting']} ({best['policy']} MCS), NME "
            f"{best['nme']:.3f} with {best['channel_uses_per_frame']:.0f} channel uses per "
            f"frame; H.264 needs {best['h264_channel_uses_per_frame']:.0f} "
            f"({best['h264_bound']}): ratio {best['ratio']:.2f} (target >= 10). The "
            f"reference is amortised over the clip's {equal['frames']} frames.")


def _sum_counters(counters: Sequence[dict]) -> dict:
    """Loopback counters of several trials added up (numbers summed, the rest from the first)."""
    out = dict(counters[0])
    for c in counters[1:]:
        for k, v in c.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[k] = out.get(k, 0) + v
    return out


def meeting_versions() -> dict:
    """Versions of the packages a meeting result depends on (torch, numpy, sionna, PyAV)."""
    import av
    import sionna

    return {"torch": torch.__version__, "numpy": np.__version__, "sionna": sionna.__version__,
            "av": av.__version__}
