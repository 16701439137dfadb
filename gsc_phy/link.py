"""Transmitter, receiver and the end-to-end simulated link, composed from Sionna blocks.

.. code-block:: python

    from gsc_phy.config import LinkConfig
    from gsc_phy.link import Link
    link = Link(LinkConfig(channel="tdl-a", modulation="16qam", estimator="ls"))
    out = link(batch_size=8, snr_db=10.0)
    print(out.block_ok.float().mean())
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sionna.phy import Block, config
from sionna.phy.channel import ApplyOFDMChannel
from sionna.phy.fec.crc import CRCDecoder, CRCEncoder
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.fec.scrambling import Descrambler, TB5GScrambler
from sionna.phy.mapping import BinarySource, Constellation, Demapper, Mapper
from sionna.phy.mimo import StreamManagement
from sionna.phy.ofdm import (
    KBestDetector,
    LMMSEChannelEstimator,
    LMMSEEqualizer,
    LSChannelEstimator,
    RemoveNulledSubcarriers,
    ResourceGridMapper,
)

from .channels import make_channel
from .config import LinkConfig
from .frame import FrameFormat
from .precoding import Precoder

__all__ = ["Transmitter", "Receiver", "Link", "LinkOutput", "default_device", "mask_crc"]


#: 24-bit mask XORed onto the CRC-24A field (as 38.212 masks DCI CRCs with the RNTI), so
#: an all-zero decoder output (erased or NaN LLRs) can never pass the CRC check.
CRC_MASK = torch.tensor([int(b) for b in f"{0x5A3C96:024b}"], dtype=torch.float32)


def mask_crc(tb: torch.Tensor) -> torch.Tensor:
    """XOR :data:`CRC_MASK` onto the last 24 bits of transport blocks [..., k] (self-inverse)."""
    mask = CRC_MASK.to(tb.device, tb.dtype)
    return torch.cat([tb[..., :-24], (tb[..., -24:] + mask) % 2], dim=-1)


def default_device(requested: str | None = None) -> str:
    """``requested`` if given, else ``cuda`` when available, else ``cpu``."""
    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class LinkOutput:
    """What one batch through the link produced.

    bits / bits_hat: [batch, codewords, payload_bits] payload sent / decided;
    block_ok: [batch, codewords] CRC passed (coded) or no bit error (uncoded);
    llr: [batch, coded_bits_per_frame] descrambled channel LLRs (log p(1)/p(0)) of the
    coded bits, padding included;
    x_hat, no_eff: [batch, streams, data_symbols] equalised symbols and their noise variance;
    x: [batch, streams, data_symbols] the transmitted data symbols.
    """

    bits: torch.Tensor
    bits_hat: torch.Tensor
    block_ok: torch.Tensor
    llr: torch.Tensor
    x: torch.Tensor
    x_hat: torch.Tensor
    no_eff: torch.Tensor


class Transmitter(Block):
    """Payload -> CRC-24A -> 5G LDPC -> 5G scrambling -> Gray QAM -> OFDM resource grid.

    The frame's coded bits (all codewords and the filler, stream-major; the payload bits
    when uncoded) are scrambled with the Gold sequence of TS 38.211 7.3.1.1 (Sionna's
    ``TB5GScrambler``, PDSCH, codeword q = 0: c_init = n_rnti·2^15 + n_id), restarted at
    every frame, so zero fill and repetitive payloads map to balanced symbols.

    :param frame: The :class:`~gsc_phy.frame.FrameFormat`.
    :param constellation: Shared Sionna ``Constellation``.
    :param n_rnti: RNTI of the scrambler (0..65535).
    :param n_id: Data scrambling ID (0..1023).

    :input payload: [batch, codewords, payload_bits] float 0/1, or ``None`` to draw random bits
        (``batch_size`` then gives the batch).
    :output payload, x_sym, x_rg: the payload, data symbols [batch, streams, data_symbols],
        and the grid [batch, 1, streams, num_ofdm_symbols, fft_size].
    """

    def __init__(
        self,
        frame: FrameFormat,
        constellation: Constellation,
        n_rnti: int = 1,
        n_id: int = 1,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.frame = frame
        self._source = BinarySource(device=self.device)
        self.scrambler = TB5GScrambler(
            n_rnti=n_rnti, n_id=n_id, binary=True, channel_type="PDSCH", codeword_index=0,
            device=self.device,
        )
        self._mapper = Mapper(constellation=constellation, device=self.device)
        self._rg_mapper = ResourceGridMapper(frame.resource_grid, device=self.device)
        if not frame.uncoded:
            self.crc_encoder = CRCEncoder("CRC24A", k=frame.k - 24, device=self.device)
            self.encoder = LDPC5GEncoder(
                frame.k, frame.n, num_bits_per_symbol=frame.bits_per_symbol, device=self.device
            )

    def encode_bits(self, payload: torch.Tensor) -> torch.Tensor:
        """Payload [batch, codewords, payload_bits] -> frame bits [batch, coded_bits_per_frame].

        The bits before scrambling (codewords, then filler); :meth:`map_bits` scrambles them.
        """
        f = self.frame
        if f.uncoded:
            return payload.reshape(payload.shape[0], -1)
        tb = mask_crc(self.crc_encoder(payload))
        cw = self.encoder(tb).reshape(payload.shape[0], -1)
        if f.padding_bits:
            pad = self._source([payload.shape[0], f.padding_bits])
            cw = torch.cat([cw, pad], dim=-1)
        return cw

    def map_bits(self, bits: torch.Tensor) -> torch.Tensor:
        """Frame bits [batch, coded_bits_per_frame] -> scrambled, mapped [batch, 1, S, Ndata].

        Example: ``tx.map_bits(torch.zeros(2, tx.frame.coded_bits_per_frame))`` spreads over
        the whole constellation instead of repeating one point.
        """
        f = self.frame
        bits = self.scrambler(bits).reshape(bits.shape[0], 1, f.num_streams, -1)
        return self._mapper(bits)

    def call(self, payload: torch.Tensor | None = None, batch_size: int = 1):
        f = self.frame
        if payload is None:
            payload = self._source([batch_size, f.codewords_per_frame, f.payload_bits_per_block])
        x = self.map_bits(self.encode_bits(payload))  # [B, 1, S, Ndata]
        return payload, x[:, 0], self._rg_mapper(x)


def combine_repetitions(x_hat: torch.Tensor, no_eff: torch.Tensor, llr: torch.Tensor,
                        repetitions: int):
    """Chase-combine ``repetitions`` consecutive batch entries that carried the same frame.

    The aggregated slots see the same channel and independent noise: the LLRs add, the
    equalised symbols average and their noise variance divides by ``repetitions``.

    :input x_hat, no_eff: [batch*r, 1, S, Ndata]; :input llr: [batch*r, bits].
    :output: the same three, [batch, ...].

    Example::

        >>> x, no, llr = combine_repetitions(torch.ones(4, 1, 1, 3), torch.ones(4, 1, 1, 3),
        ...                                  torch.ones(4, 6), 2)
        >>> llr[0, 0].item(), no[0, 0, 0, 0].item()
        (2.0, 0.5)
    """
    def grouped(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(t.shape[0] // repetitions, repetitions, *t.shape[1:])

    return (grouped(x_hat).mean(1), grouped(no_eff).mean(1) / repetitions,
            grouped(llr).sum(1))


class Receiver(Block):
    """Channel estimation -> LMMSE equalisation (or K-best) -> soft demapping -> LDPC -> CRC.

    :param cfg: Link configuration.
    :param frame: Frame format.
    :param transmitter: The matching transmitter (its LDPC encoder parametrises the decoder,
        its scrambler the LLR descrambler).
    :param constellation: Shared constellation.
    :param covariances: ``(time, freq, space)`` channel covariances for LMMSE estimation.

    :input y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] received grid; with slot
        aggregation (``frame.repetitions`` = r > 1) [batch·r, ...], the r slots of a frame
        consecutive, combined before decoding (:func:`combine_repetitions`).
    :input no: Noise variance (float).
    :input h_eff: Effective channel [batch, 1, Nr, 1, S, symbols, fft] (used for perfect CSI).
    :output bits_hat, block_ok, llr, x_hat, no_eff: see :class:`LinkOutput` ([batch, ...]).
    """

    def __init__(
        self,
        cfg: LinkConfig,
        frame: FrameFormat,
        transmitter: Transmitter,
        constellation: Constellation,
        covariances: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.cfg = cfg
        self.frame = frame
        rg = frame.resource_grid
        sm = StreamManagement([[1]], frame.num_streams)
        self._remove_nulled = RemoveNulledSubcarriers(rg, device=self.device)
        if cfg.estimator == "ls":
            self._estimator = LSChannelEstimator(rg, interpolation_type="lin", device=self.device)
        elif cfg.estimator == "lmmse":
            t, f, s = covariances
            self._estimator = LMMSEChannelEstimator(rg, t, f, s, order="f-t", device=self.device)
        self._equalizer = LMMSEEqualizer(rg, sm, device=self.device)
        self._demapper = Demapper("app", constellation=constellation, device=self.device)
        self._descrambler = Descrambler(transmitter.scrambler, binary=False, device=self.device)
        self._kbest = None
        if cfg.detector == "kbest":
            self._kbest = KBestDetector(
                "bit", frame.num_streams, cfg.kbest_k, rg, sm,
                constellation=constellation, device=self.device,
            )
        if not frame.uncoded:
            self._decoder = LDPC5GDecoder(
                transmitter.encoder, hard_out=True, num_iter=cfg.ldpc_iterations,
                device=self.device,
            )
            self._crc_decoder = CRCDecoder(transmitter.crc_encoder, device=self.device)

    def estimate(self, y: torch.Tensor, no: torch.Tensor, h_eff: torch.Tensor):
        """Channel estimate and error variance on the effective subcarriers."""
        if self.cfg.estimator == "perfect":
            h_hat = self._remove_nulled(h_eff)
            return h_hat, torch.zeros((), device=y.device)
        return self._estimator(y, no)

    def equalize(self, y: torch.Tensor, no: torch.Tensor, h_eff: torch.Tensor):
        """Channel estimation and LMMSE equalisation only: the equalised data symbols and
        their noise variances, [batch, 1, S, Ndata] each, plus ``(h_hat, err_var)``. A
        stream without power (water-filling switched it off) has no information: it comes
        out as an erasure (x_hat = 0, no_eff = 1e9) instead of NaNs."""
        h_hat, err_var = self.estimate(y, no, h_eff)
        x_hat, no_eff = self._equalizer(y, h_hat, err_var, no)  # [B, 1, S, Ndata]
        bad = ~(torch.isfinite(x_hat) & torch.isfinite(no_eff))
        if bool(bad.any()):
            x_hat = torch.where(bad, torch.zeros_like(x_hat), x_hat)
            no_eff = torch.where(bad, torch.full_like(no_eff, 1e9), no_eff)
        return x_hat, no_eff, (h_hat, err_var)

    def call(self, y: torch.Tensor, no: torch.Tensor, h_eff: torch.Tensor):
        f = self.frame
        x_hat, no_eff, (h_hat, err_var) = self.equalize(y, no, h_eff)
        if self._kbest is not None:
            llr = self._kbest(y, h_hat, err_var, no)
        else:
            llr = self._demapper(x_hat, no_eff)
        llr = self._descrambler(llr.reshape(llr.shape[0], -1))  # sign flips
        if f.repetitions > 1:  # chase combining of the aggregated slots
            x_hat, no_eff, llr = combine_repetitions(x_hat, no_eff, llr, f.repetitions)
        b = llr.shape[0]
        if f.uncoded:
            bits_hat = (llr > 0).to(llr.dtype).reshape(b, 1, -1)
            return bits_hat, None, llr, x_hat[:, 0], no_eff[:, 0]
        cw_llr = llr[:, : f.codewords_per_frame * f.n].reshape(b, f.codewords_per_frame, f.n)
        # Sionna 2.x LLRs are log p(1)/p(0); the decoder takes the same convention.
        decoded = self._decoder(cw_llr)
        bits_hat, crc_ok = self._crc_decoder(mask_crc(decoded))
        return bits_hat, crc_ok[..., 0], llr, x_hat[:, 0], no_eff[:, 0]


class Link(Block):
    """The whole simulated link: transmitter, precoder, channel, noise, receiver.

    With slot aggregation (``cfg.repetitions`` = r > 1, 38.214 ``pdsch-AggregationFactor``)
    every frame goes out in r consecutive slots over one channel realisation (the channel
    is assumed constant over the r ms: conservative, no time diversity is credited) with
    independent noise, and the receiver chase-combines them; the frame then costs r times
    the channel uses.

    :param cfg: :class:`~gsc_phy.config.LinkConfig`.
    :param device: ``cuda``/``cpu``; default: cuda when present.

    :input batch_size: Frames per call.
    :input snr_db: One SNR point (kind from ``cfg.snr_kind``).
    :input payload: Optional payload [batch, codewords, payload_bits] to send instead of
        random bits (the semantic layer passes its bits here).
    :output: :class:`LinkOutput`.
    """

    def __init__(self, cfg: LinkConfig, device: str | None = None) -> None:
        device = default_device(device or cfg.device)
        super().__init__(device=device)
        config.seed = cfg.seed
        self.cfg = cfg
        self.frame = FrameFormat.from_config(cfg, device=device)
        self.constellation = Constellation(
            cfg.constellation_type, cfg.bits_per_symbol, device=device
        )
        self.transmitter = Transmitter(
            self.frame, self.constellation, cfg.n_rnti, cfg.n_id, device=device
        )
        self.channel = make_channel(cfg, self.frame.resource_grid, device)
        self.precoder = Precoder(cfg.precoder, cfg.streams, cfg.water_filling)
        self._apply_channel = ApplyOFDMChannel(device=device)
        covariances = self._channel_covariances() if cfg.estimator == "lmmse" else None
        self.receiver = Receiver(
            cfg, self.frame, self.transmitter, self.constellation, covariances, device=device
        )

    def effective_channel(self, batch_size: int, no: float) -> torch.Tensor:
        """Draw channels and precode: H_eff = H W, [batch, 1, Nr, 1, S, symbols, fft]."""
        h = self.channel(batch_size)  # [B, 1, Nr, 1, Nt, T, F]
        hm = h[:, 0, :, 0].permute(0, 3, 4, 1, 2)  # [B, T, F, Nr, Nt]
        w = self.precoder(hm, no)  # [B, T, F, Nt, S]
        h_eff = hm @ w  # [B, T, F, Nr, S]
        return h_eff.permute(0, 3, 4, 1, 2)[:, None, :, None]

    def _channel_covariances(self, num_samples: int = 512):
        """Empirical time/frequency/space covariances of H_eff for the LMMSE estimator.

        Measured on ``num_samples`` channel draws (noise-free, effective subcarriers);
        the time and space covariances are normalised to unit mean diagonal, the frequency
        one carries the channel power (Sionna's LMMSE estimator applies them in that order).
        """
        remove_nulled = RemoveNulledSubcarriers(self.frame.resource_grid, device=self.device)
        draws = [remove_nulled(self.effective_channel(64, 0.1))[:, 0, :, 0]
                 for _ in range(max(1, num_samples // 64))]
        h = torch.cat(draws)  # [N, Nr, S, T, M]
        nr, t, m = h.shape[1], h.shape[3], h.shape[4]

        def cov(x: torch.Tensor) -> torch.Tensor:
            return x.T @ x.conj() / x.shape[0]

        cov_f = cov(h.reshape(-1, m))
        cov_t = cov(h.transpose(3, 4).reshape(-1, t))
        cov_s = cov(h.permute(0, 2, 3, 4, 1).reshape(-1, nr))
        cov_t = cov_t / cov_t.diagonal().real.mean()
        cov_s = cov_s / cov_s.diagonal().real.mean()
        return cov_t, cov_f, cov_s

    def call(
        self, batch_size: int, snr_db: float, payload: torch.Tensor | None = None
    ) -> LinkOutput:
        no_val = self.frame.noise_variance(float(snr_db), self.cfg.snr_kind)
        no = torch.tensor(no_val, dtype=torch.float32, device=self.device)
        if payload is not None:
            batch_size = payload.shape[0]
        bits, x, x_rg = self.transmitter(payload, batch_size=batch_size)
        h_eff = self.effective_channel(batch_size, no_val)
        r = self.frame.repetitions
        if r > 1:  # aggregated slots: same frame, same channel, independent noise
            x_rg, h_eff = x_rg.repeat_interleave(r, 0), h_eff.repeat_interleave(r, 0)
        y = self._apply_channel(x_rg, h_eff, no)
        bits_hat, block_ok, llr, x_hat, no_eff = self.receiver(y, no, h_eff)
        if block_ok is None:  # uncoded: a block is the frame's bits
            block_ok = (bits_hat == bits).all(dim=-1)
        return LinkOutput(bits, bits_hat, block_ok, llr, x, x_hat, no_eff)

    def send_symbols(self, x: torch.Tensor, snr_db: float):
        """Send arbitrary complex data symbols (analog transmission, e.g. DeepJSCC) through
        the same grid, channel, pilots, estimator and equaliser as the coded frames.

        :input x: [frames, streams, data_symbols] complex, one frame's data REs per row
            (Sionna's grid order, as :class:`Transmitter` maps bits); unit average energy
            per RE is the caller's business (Es/N0 counts 1).
        :input snr_db: One SNR point (kind from ``cfg.snr_kind``).
        :output x_hat, no_eff: [frames, streams, data_symbols] equalised symbols and their
            noise variances (slot repetitions chase-combined).

        Example::

            >>> link = Link(LinkConfig(uncoded=True, estimator="ls"), device="cpu")
            >>> ff = link.frame
            >>> x = torch.ones(2, ff.num_streams, ff.data_symbols_per_stream, dtype=torch.complex64)
            >>> x_hat, no_eff = link.send_symbols(x, 30.0)
            >>> x_hat.shape == x.shape, bool((x_hat - x).abs().mean() < 0.1)
            (True, True)
        """
        no_val = self.frame.noise_variance(float(snr_db), self.cfg.snr_kind)
        no = torch.tensor(no_val, dtype=torch.float32, device=self.device)
        x = x.to(self.device, torch.complex64)
        batch_size = x.shape[0]
        x_rg = self.transmitter._rg_mapper(x[:, None])
        h_eff = self.effective_channel(batch_size, no_val)
        r = self.frame.repetitions
        if r > 1:
            x_rg, h_eff = x_rg.repeat_interleave(r, 0), h_eff.repeat_interleave(r, 0)
        y = self._apply_channel(x_rg, h_eff, no)
        x_hat, no_eff, _ = self.receiver.equalize(y, no, h_eff)
        if r > 1:
            b = x_hat.shape[0] // r
            x_hat = x_hat.reshape(b, r, *x_hat.shape[1:]).mean(1)
            no_eff = no_eff.reshape(b, r, *no_eff.shape[1:]).mean(1) / r
        return x_hat[:, 0], no_eff[:, 0]
