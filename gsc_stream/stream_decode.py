"""Encode frames for, and decode frames from, the GNU Radio streaming link with gsc_phy blocks.

The streaming link carries the same frames as the simulated PHY: :class:`StreamCodec`
reuses :class:`~gsc_phy.link.Transmitter` (CRC-24A + mask, 5G LDPC, 5G scrambling, Gray
QAM) to produce the data symbols a TX flowgraph maps onto the grid, and decodes the
equalised symbols and noise variances an RX flowgraph sends back with Sionna's APP
demapper, the LLR descrambler (sign flips), the 5G LDPC decoder and the masked CRC-24A
check (the receiver chain of :class:`~gsc_phy.link.Receiver` after its equaliser).

Test traffic (``gsc loopback``) numbers its frames inside the payload: the first 32 payload
bits of codeword 0 are the frame number (MSB first), the rest are pseudo-random bits seeded
by ``(seed, seq)`` (:func:`loopback_payload`), so a decoded frame identifies itself.

.. code-block:: python

    from gsc_phy.config import LinkConfig
    from gsc_stream.stream_decode import StreamCodec
    codec = StreamCodec(LinkConfig())
    payload, x = codec.encode(batch_size=2)          # x: [2, 1, 1536] complex64
    out = codec.decode(x, np.full(x.shape, 0.01, np.float32))
    print(out.block_ok.all())
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch
from sionna.phy import config as sionna_config
from sionna.phy.fec.crc import CRCDecoder
from sionna.phy.fec.ldpc import LDPC5GDecoder
from sionna.phy.fec.scrambling import Descrambler
from sionna.phy.mapping import Constellation, Demapper

from gsc_phy.config import LinkConfig
from gsc_phy.frame import FrameFormat
from gsc_phy.link import Transmitter, mask_crc

__all__ = [
    "StreamCodec",
    "DecodeResult",
    "SEQ_BITS",
    "loopback_payload",
    "payload_seq",
    "payload_crc32",
]

#: Payload bits that carry the frame number in loopback test traffic.
SEQ_BITS = 32


def loopback_payload(seq: int, seed: int, codewords: int, payload_bits: int) -> np.ndarray:
    """Test payload [codewords, payload_bits] (uint8 0/1) of frame ``seq``.

    The first :data:`SEQ_BITS` bits are ``seq`` MSB-first; the rest come from
    ``numpy.random.default_rng([seed, seq])``.
    """
    rng = np.random.default_rng([int(seed), int(seq)])
    bits = rng.integers(0, 2, (codewords, payload_bits), dtype=np.uint8)
    n = min(SEQ_BITS, payload_bits)
    seq_bits = [(int(seq) >> (SEQ_BITS - 1 - i)) & 1 for i in range(SEQ_BITS)]
    bits[0, :n] = seq_bits[:n]
    return bits


def payload_seq(bits: np.ndarray) -> int:
    """Frame number carried by a loopback payload [codewords, payload_bits]."""
    head = np.asarray(bits).reshape(-1)[:SEQ_BITS].astype(np.int64)
    return int(sum(int(b) << (len(head) - 1 - i) for i, b in enumerate(head)))


def payload_crc32(bits: np.ndarray) -> int:
    """CRC-32 of a payload's bits packed MSB-first (to compare payloads cheaply)."""
    packed = np.packbits(np.asarray(bits, np.uint8).reshape(-1), bitorder="big")
    return zlib.crc32(packed.tobytes()) & 0xFFFFFFFF


@dataclass
class DecodeResult:
    """Decoder output for a batch of frames.

    bits_hat: [B, codewords, payload_bits] uint8; block_ok: [B, codewords] bool (CRC passed;
    for uncoded frames always True); llr: [B, coded_bits] float32 descrambled channel LLRs
    (log p(1)/p(0)) of the coded bits; evm_db: [B] EVM of the codeword symbols against the
    re-encoded decision (NaN where a block failed).
    """

    bits_hat: np.ndarray
    block_ok: np.ndarray
    llr: np.ndarray
    evm_db: np.ndarray


class StreamCodec:
    """gsc_phy encoder and decoder for frames of the streaming link (one frame format).

    :param cfg: Link configuration that defines the frame (modulation, k, n, grid).
    :param device: torch device (``cpu`` by default: the decoder is batch-light).
    :param ldpc_iterations: Belief-propagation iterations (default ``cfg.ldpc_iterations``).

    ``encode(payload)`` -> (payload, x [B, S, Nd] complex64);
    ``decode(x_hat, no_eff)`` -> :class:`DecodeResult`. With S > 1 streams (the ``mimo2x2``
    grid) the streams are demapped together (coded bits stream-major, as the transmitter
    maps them) and the EVM runs over the codeword symbols of all streams.
    """

    def __init__(
        self, cfg: LinkConfig, device: str = "cpu", ldpc_iterations: int | None = None
    ) -> None:
        sionna_config.seed = cfg.seed
        self.cfg = cfg
        self.device = device
        self.frame = FrameFormat.from_config(cfg, device=device)
        self.constellation = Constellation(
            cfg.constellation_type, cfg.bits_per_symbol, device=device
        )
        self.transmitter = Transmitter(
            self.frame, self.constellation, cfg.n_rnti, cfg.n_id, device=device
        )
        self._demapper = Demapper("app", constellation=self.constellation, device=device)
        self._descrambler = Descrambler(self.transmitter.scrambler, binary=False, device=device)
        self._decoder = None
        if not self.frame.uncoded:
            self._decoder = LDPC5GDecoder(
                self.transmitter.encoder,
                hard_out=True,
                num_iter=ldpc_iterations or cfg.ldpc_iterations,
                device=device,
            )
            self._crc = CRCDecoder(self.transmitter.crc_encoder, device=device)

    @property
    def data_shape(self) -> tuple[int, int]:
        """(streams, data symbols per stream) of one frame."""
        return (self.frame.num_streams, self.frame.data_symbols_per_stream)

    @torch.no_grad()
    def encode(
        self, payload: np.ndarray | None = None, batch_size: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Payload [B, codewords, payload_bits] (0/1; random when None) -> data symbols.

        :output: (payload uint8 [B, cw, pb], x complex64 [B, S, Nd]).
        """
        p = None
        if payload is not None:
            p = torch.as_tensor(np.asarray(payload), dtype=torch.float32, device=self.device)
        bits, x, _ = self.transmitter(p, batch_size=batch_size)
        return (
            bits.cpu().numpy().astype(np.uint8),
            x.cpu().numpy().astype(np.complex64),
        )

    @torch.no_grad()
    def _symbols(self, bits: torch.Tensor) -> torch.Tensor:
        """Frame bits [B, coded_bits] -> symbols [B, S, Nd] (scrambled and mapped as sent)."""
        return self.transmitter.map_bits(bits)[:, 0]

    @torch.no_grad()
    def decode(self, x_hat: np.ndarray, no_eff: np.ndarray) -> DecodeResult:
        """Equalised symbols and noise variances [B, S, Nd] -> decoded payload and CRC flags."""
        f = self.frame
        x = torch.as_tensor(np.asarray(x_hat, np.complex64), device=self.device)
        no = torch.as_tensor(np.asarray(no_eff, np.float32), device=self.device)
        no = torch.clamp(no, min=1e-6)
        b = x.shape[0]
        llr = self._demapper(x, no).reshape(b, -1)  # [B, coded_bits], log p(1)/p(0)
        llr = self._descrambler(llr)  # sign flips undo the transmitter's scrambling
        if f.uncoded:
            bits_hat = (llr > 0).to(torch.uint8).reshape(b, 1, -1)
            ok = torch.ones((b, 1), dtype=torch.bool)
            ref_bits = bits_hat.reshape(b, -1).float()
        else:
            cw_llr = llr[:, : f.codewords_per_frame * f.n].reshape(b, f.codewords_per_frame, f.n)
            decoded = self._decoder(cw_llr)
            bits_hat, crc_ok = self._crc(mask_crc(decoded))
            ok = crc_ok[..., 0].bool()
            tb = mask_crc(self.transmitter.crc_encoder(bits_hat))
            ref_bits = self.transmitter.encoder(tb).reshape(b, -1)
            bits_hat = bits_hat.to(torch.uint8)
        evm = self._evm(x, ref_bits, ok)
        return DecodeResult(
            bits_hat=bits_hat.cpu().numpy().astype(np.uint8),
            block_ok=ok.cpu().numpy().astype(bool),
            llr=llr.cpu().numpy().astype(np.float32),
            evm_db=evm,
        )

    def _evm(self, x: torch.Tensor, ref_bits: torch.Tensor, ok: torch.Tensor) -> np.ndarray:
        """EVM (dB) over the symbols that carry only codeword bits, for frames fully decoded."""
        f = self.frame
        b = x.shape[0]
        nsym = ref_bits.shape[1] // f.bits_per_symbol
        if nsym == 0:
            return np.full(b, np.nan)
        full = torch.zeros((b, f.coded_bits_per_frame), device=x.device)
        full[:, : nsym * f.bits_per_symbol] = ref_bits[:, : nsym * f.bits_per_symbol]
        # streams are filled stream-major, so the codeword symbols lead the flat order
        ref = self._symbols(full).reshape(b, -1)[:, :nsym]
        err = (x.reshape(b, -1)[:, :nsym] - ref).abs().pow(2).mean(dim=-1)
        pw = ref.abs().pow(2).mean(dim=-1)
        evm = 10 * torch.log10(err / pw)
        evm = torch.where(ok.all(dim=-1), evm, torch.full_like(evm, float("nan")))
        return evm.cpu().numpy().astype(np.float64)
