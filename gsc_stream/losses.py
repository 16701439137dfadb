"""Loss accounting of the streaming link: why a sent frame was not decoded.

Every runner (the SISO loopback, the MIMO/channel-feed loopback, the radio link) splits the
frames it lost over :data:`LOSS_CAUSES` with :func:`attribute_losses`, so that
``frames_sent == frames_decoded + sum(frames_lost)`` always holds. A module of its own so
that the runners import it rather than each other.
"""

from __future__ import annotations

__all__ = ["LOSS_CAUSES", "attribute_losses"]

#: Why a sent frame was not decoded, in the order losses are attributed: ``late`` - decoded
#: after ``--deadline-ms``; ``undetected_error`` - CRC passed on wrong bits; ``crc_failed`` -
#: detected and decoded, CRC failed; ``queue_overflow`` - the RX block's queue (and spool)
#: was full; ``decoder_absent`` - still queued when the flowgraph stopped with no decoder;
#: ``decoder_dropped`` - rejected by a worker; ``result_lost`` - acknowledged by a worker but
#: its result never arrived; ``aborted`` - in flight when a process failed; ``not_detected``
#: - the rest: no burst found. Each count is capped by the frames left to explain.
LOSS_CAUSES = ("late", "undetected_error", "crc_failed", "queue_overflow", "decoder_absent",
               "decoder_dropped", "result_lost", "aborted", "not_detected")


def attribute_losses(lost: int, measured: dict[str, int], aborted: bool = False
                     ) -> dict[str, int]:
    """Split ``lost`` frames over :data:`LOSS_CAUSES` so that they add up exactly.

    :input lost: Frames sent but not delivered.
    :input measured: Counts per cause (any of ``LOSS_CAUSES[:-2]``; missing ones are 0), each
        capped, in the order of ``LOSS_CAUSES``, by what is left to explain.
    :input aborted: A process failed: the rest is ``aborted``, else ``not_detected``.
    :output: ``{cause: frames}`` for every cause; its sum is ``lost``.

    >>> attribute_losses(5, {"crc_failed": 2})["not_detected"]
    3
    """
    causes: dict[str, int] = {}
    left = lost
    for cause in LOSS_CAUSES[:-2]:
        causes[cause] = min(int(measured.get(cause, 0)), left)
        left -= causes[cause]
    causes["aborted"] = left if aborted else 0
    causes["not_detected"] = 0 if aborted else left
    return causes
