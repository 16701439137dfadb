"""Python GNU Radio blocks of the device flowgraphs (radio interpreter only).

* :class:`impairments_cc` wraps :class:`hardware.impairments.Impairments` (RF front-end
  impairments of the ZeroMQ virtual radio). It is a general block: sampling-rate offset,
  underruns and overruns change the number of samples.
* :class:`sigmf_source_c` replays a SigMF recording (read with
  :mod:`hardware.sigmf_lite`, no ``sigmf`` package), then ends the flowgraph (or loops).
* :class:`sigmf_sink_c` records a stream into a SigMF recording, metadata written when the
  flowgraph stops (the SigMF file radio's TX).

GRC block YAML: ``flowgraphs/grc/device/gsc_*.block.yml``.
"""

from __future__ import annotations

import json

import numpy as np
from gnuradio import gr

from hardware.impairments import ImpairmentConfig, Impairments
from hardware.sigmf_lite import SigMFWriter, read_recording

__all__ = ["impairments_cc", "sigmf_source_c", "sigmf_sink_c"]


class impairments_cc(gr.basic_block):  # noqa: N801 (GNU Radio block naming)
    """RF impairments on a complex stream (see :mod:`hardware.impairments`).

    :param config_json: JSON object of :class:`~hardware.impairments.ImpairmentConfig`
        fields (``"{}"`` = clean).
    :param samp_rate: Sample rate, used when the JSON has no ``samp_rate_hz``.
    """

    def __init__(self, config_json: str = "{}", samp_rate: float = 1e6) -> None:
        gr.basic_block.__init__(self, name="gsc_impairments", in_sig=[np.complex64],
                                out_sig=[np.complex64])
        cfg = ImpairmentConfig.from_dict(json.loads(config_json or "{}"),
                                         samp_rate_hz=samp_rate)
        self.set_tag_propagation_policy(gr.TPP_DONT)  # TX tags do not cross the air
        self.impairments = Impairments(cfg)
        self._pending = np.zeros(0, np.complex64)

    def forecast(self, noutput_items: int, ninputs: int) -> list[int]:
        """Input wanted for ``noutput_items``: none while buffered output covers it."""
        need = max(0, noutput_items - len(self._pending))
        return [need] * ninputs

    def general_work(self, input_items, output_items) -> int:
        out = output_items[0]
        x = input_items[0]
        if len(self._pending) < len(out) and len(x):
            y = self.impairments.process(np.asarray(x))
            self.consume(0, len(x))
            self._pending = np.concatenate([self._pending, y]) if len(self._pending) else y
        k = min(len(out), len(self._pending))
        out[:k] = self._pending[:k]
        self._pending = self._pending[k:]
        return k

    def stats(self) -> dict:
        """The emulator's counters (samples in/out, underruns, overruns, AGC steps)."""
        return dict(self.impairments.stats)


class sigmf_source_c(gr.sync_block):  # noqa: N801
    """Replay the complex samples of a SigMF recording, then finish (or repeat).

    :param path: Recording base name or ``.sigmf-meta``/``.sigmf-data`` path.
    :param repeat: Loop forever instead of ending the flowgraph.
    :param verify_hash: Check ``core:sha512`` before starting.
    """

    def __init__(self, path: str, repeat: bool = False, verify_hash: bool = True) -> None:
        gr.sync_block.__init__(self, name="gsc_sigmf_source", in_sig=None,
                               out_sig=[np.complex64])
        self.recording = read_recording(path, verify_hash=verify_hash)
        self.repeat = bool(repeat)
        self._pos = 0

    def work(self, input_items, output_items) -> int:
        out = output_items[0]
        rec = self.recording
        if rec.num_samples == 0:
            return -1
        if self._pos >= rec.num_samples:
            if not self.repeat:
                return -1  # WORK_DONE
            self._pos = 0
        x = rec.samples(self._pos, len(out))
        out[: len(x)] = x
        self._pos += len(x)
        return len(x)


class sigmf_sink_c(gr.sync_block):  # noqa: N801
    """Record a complex stream into a SigMF recording (cf32_le); metadata written on stop.

    :param path: Recording base name (``.sigmf-data``/``.sigmf-meta`` are added).
    :param samp_rate: ``core:sample_rate``.
    :param center_freq: ``core:frequency`` of the capture.
    :param hw: ``core:hw``.
    :param overwrite: Replace an existing recording.
    """

    def __init__(self, path: str, samp_rate: float, center_freq: float = 0.0,
                 hw: str = "gsc modem TX (SigMF file radio)", overwrite: bool = False) -> None:
        gr.sync_block.__init__(self, name="gsc_sigmf_sink", in_sig=[np.complex64],
                               out_sig=None)
        self.writer = SigMFWriter(path, sample_rate_hz=samp_rate, center_freq_hz=center_freq,
                                  hw=hw, overwrite=overwrite)

    def work(self, input_items, output_items) -> int:
        x = input_items[0]
        self.writer.write(x)
        return len(x)

    def stop(self) -> bool:
        self.writer.close()
        return True
