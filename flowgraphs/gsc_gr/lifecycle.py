"""What the SISO and MIMO burst blocks share: the TX blocks' frame-source lifecycle and the
RX blocks' counters (radio interpreter; no GNU Radio import needed here)."""

from __future__ import annotations

import json
from typing import Any

from bridge.transport import Puller

__all__ = ["FrameSourceLifecycle", "rx_block_stats", "write_stats"]


def write_stats(path: str, stats: dict) -> None:
    """Write a block's counters as JSON (``path`` empty: nothing)."""
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(stats, fh, indent=1)


class FrameSourceLifecycle:
    """``start``/``stop`` of a TX block that pulls frames from ``self.endpoint``.

    The block sets ``endpoint``, ``bind``, ``counters`` (a Counter), ``stats_file`` and
    ``_rx = None`` and defines ``stats()``; on stop the transport's drop counts land in
    ``counters`` as ``wire_dropped_<cause>`` and the stats JSON is written.
    """

    endpoint: str
    bind: bool
    stats_file: str
    counters: Any
    _rx: Puller | None

    def start(self) -> bool:
        if self.endpoint:
            self._rx = Puller(self.endpoint, bind=self.bind, timeout_ms=50, hwm=64)
        return True

    def stop(self) -> bool:
        if self._rx is not None:
            self.counters.update({f"wire_dropped_{k}": v
                                  for k, v in self._rx.stats.dropped.items()})
            self._rx.close()
            self._rx = None
        write_stats(self.stats_file, self.stats())
        return True


def rx_block_stats(receiver_stats: dict, counters: dict, queue_stats: dict, format_id: int,
                   busy_s: float, t_first: float | None, t_last: float | None) -> dict:
    """Counters of an RX block: the receiver's, the block's, the decoder queue's
    (``queue_<name>``, plus ``queue_overflow``, ``decoder_absent`` and ``frames_acked`` that
    the loopbacks' loss accounting reads), ``format_id``, ``busy_s`` and ``active_s``."""
    out = dict(receiver_stats)
    out.update(counters)
    out.update({f"queue_{k}": v for k, v in queue_stats.items()})
    out["queue_overflow"] = queue_stats.get("queue_overflow", 0)
    out["decoder_absent"] = queue_stats.get("decoder_absent", 0)
    out["frames_acked"] = queue_stats.get("acked", 0)
    out["format_id"] = format_id
    out["busy_s"] = busy_s
    if t_first is not None and t_last is not None:
        out["active_s"] = t_last - t_first
    return out
