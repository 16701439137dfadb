"""Reconfigurable intelligent surface (RIS) channel for the simulated PHY.

Sionna 2.x dropped its RIS model; this module provides one as Sionna-style blocks:

- :class:`RISGeometry`: validated description of a TX-RIS-RX scene (positions in metres,
  RIS as a uniform planar array, TX/RX uniform linear arrays, carrier frequency, near/far
  field, blocked direct path).
- :class:`RISChannel`: per-subcarrier cascaded channel
  :math:`\\mathbf{H}(f) = \\mathbf{H}_d(f) + \\mathbf{H}_{RU}(f)\\,\\mathrm{diag}(\\phi)\\,
  \\mathbf{H}_{BR}(f)` in Sionna's OFDM ``h_freq`` layout, ready for
  :class:`~sionna.phy.channel.ApplyOFDMChannel`.
- :class:`RISPhaseController` and the functions :func:`random_phases`,
  :func:`cophase_phases`, :func:`optimize_phases_capacity`, :func:`quantize_phases`:
  RIS phase configuration (random, co-phasing, capacity-maximising projected gradient,
  b-bit quantisation).

Phases are angles in radians (real tensors) throughout; :class:`RISChannel` also accepts
complex reflection coefficients.
"""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import torch
from sionna.phy import Block
from sionna.phy.config import Precision
from sionna.phy.constants import SPEED_OF_LIGHT

from .config import parse_position

__all__ = [
    "RISGeometry",
    "RISChannel",
    "RISPhaseController",
    "PHASE_STRATEGIES",
    "ris_grid",
    "random_phases",
    "cophase_phases",
    "optimize_phases_capacity",
    "quantize_phases",
    "cascade_channel",
    "capacity_objective",
]

PHASE_STRATEGIES = ("random", "cophase", "optimized")

_Vec3 = tuple[float, float, float]


def ris_grid(num_elements: int) -> tuple[int, int]:
    """Most square ``(num_rows, num_cols)`` grid with ``num_rows * num_cols = num_elements``.

    :param num_elements: Number of RIS elements N >= 1.

    :output grid: ``(num_rows, num_cols)`` with ``num_rows <= num_cols`` (a prime N gives
        a 1 x N line).

    .. code-block:: python

        from gsc_phy.ris import ris_grid
        print(ris_grid(64), ris_grid(128), ris_grid(7))
        # (8, 8) (8, 16) (1, 7)
    """
    if isinstance(num_elements, bool) or int(num_elements) != num_elements or num_elements < 1:
        raise ValueError(f"number of RIS elements must be an integer >= 1, got {num_elements!r}")
    n = int(num_elements)
    rows = max(r for r in range(1, math.isqrt(n) + 1) if n % r == 0)
    return rows, n // rows


def _as_vec3(name: str, value: Sequence[float] | None, allow_none: bool = False) -> _Vec3 | None:
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name} is required (x, y, z in metres)")
    if isinstance(value, str):
        return parse_position(value)
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be three numbers (x, y, z), got {value!r}") from None
    if arr.size != 3 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be three finite numbers (x, y, z), got {value!r}")
    return (float(arr[0]), float(arr[1]), float(arr[2]))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class RISGeometry:
    r"""Geometry of a TX - RIS - RX link (all positions in metres, global xyz frame).

    The RIS is a uniform planar array of ``num_rows`` x ``num_cols`` elements centred at
    ``ris_pos_m``, lying in the plane orthogonal to ``ris_normal`` (the side the normal
    points to is the reflecting side). In-plane axes: columns run along the horizontal
    direction :math:`\hat z \times \hat n` (global x if the normal is vertical), rows along
    :math:`\hat n \times` that, i.e. "up"; ``ris_rotation_deg`` rotates both about the
    normal. TX and RX carry uniform linear arrays centred at their positions.

    :param tx_pos_m: TX array centre (x, y, z) [m] (a ``"x,y,z"`` string is accepted).
    :param ris_pos_m: RIS centre (x, y, z) [m].
    :param rx_pos_m: RX array centre (x, y, z) [m].
    :param num_rows: Number of RIS element rows (>= 1).
    :param num_cols: Number of RIS element columns (>= 1). ``N = num_rows * num_cols``.
    :param carrier_frequency_hz: Carrier frequency :math:`f_c` [Hz] (> 0).
    :param element_spacing_m: RIS element spacing (square cells, :math:`d_x = d_y`) [m].
        `None` (default): :math:`\lambda/2`.
    :param ris_normal: Normal of the RIS plane (any length). `None` (default): the
        bisector of the directions from the RIS to TX and to RX (specular orientation).
    :param ris_rotation_deg: Rotation of the element grid about the normal [deg].
    :param num_tx_ant: Number of TX antennas (ULA, >= 1).
    :param num_rx_ant: Number of RX antennas (ULA, >= 1).
    :param antenna_spacing_m: TX/RX ULA spacing [m]. `None` (default): :math:`\lambda/2`.
    :param tx_array_axis: TX ULA axis. `None` (default): horizontal and orthogonal to
        the TX-RX line (global x if that line is vertical).
    :param rx_array_axis: RX ULA axis. `None` (default): same rule as the TX.
    :param near_field: `True`: spherical waves, exact distance and angle for every
        element/antenna pair. `False` (default): plane waves (steering vectors about the
        array centres, one amplitude per link).
    :param direct_path_blocked: `True`: no TX-RX line-of-sight path.
    :param element_pattern_exponent: :math:`q` of the unit-cell normalised power
        radiation pattern :math:`F(\theta) = \cos^q\theta` (0: isotropic cells).

    Invalid geometry (coincident positions, TX or RX behind or in the RIS plane,
    ``N < 1``, non-positive frequency or spacing, ...) raises `ValueError` with a
    one-line message.

    .. code-block:: python

        from gsc_phy.ris import RISGeometry
        g = RISGeometry(tx_pos_m=(0, -20, 5), ris_pos_m=(10, 0, 5), rx_pos_m=(0, 20, 5),
                        num_rows=8, num_cols=8, carrier_frequency_hz=3.5e9)
        print(g.num_elements, round(g.wavelength_m, 4))
        # 64 0.0857
    """

    tx_pos_m: _Vec3
    ris_pos_m: _Vec3
    rx_pos_m: _Vec3
    num_rows: int = 8
    num_cols: int = 8
    carrier_frequency_hz: float = 3.5e9
    element_spacing_m: float | None = None
    ris_normal: _Vec3 | None = None
    ris_rotation_deg: float = 0.0
    num_tx_ant: int = 1
    num_rx_ant: int = 1
    antenna_spacing_m: float | None = None
    tx_array_axis: _Vec3 | None = None
    rx_array_axis: _Vec3 | None = None
    near_field: bool = False
    direct_path_blocked: bool = False
    element_pattern_exponent: float = 1.0

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        for name in ("tx_pos_m", "ris_pos_m", "rx_pos_m"):
            put(name, _as_vec3(name, getattr(self, name)))
        for name in ("ris_normal", "tx_array_axis", "rx_array_axis"):
            v = _as_vec3(name, getattr(self, name), allow_none=True)
            if v is not None and np.linalg.norm(v) == 0.0:
                raise ValueError(f"{name} must be a non-zero vector")
            put(name, v)
        for name in ("num_rows", "num_cols", "num_tx_ant", "num_rx_ant"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
            put(name, int(v))
        fc = self.carrier_frequency_hz
        if not isinstance(fc, (int, float)) or not math.isfinite(fc) or fc <= 0:
            raise ValueError(f"carrier_frequency_hz must be finite and > 0, got {fc!r}")
        put("carrier_frequency_hz", float(fc))
        for name in ("element_spacing_m", "antenna_spacing_m"):
            v = getattr(self, name)
            if v is not None:
                if not math.isfinite(v) or v <= 0:
                    raise ValueError(f"{name} must be finite and > 0, got {v!r}")
                put(name, float(v))
        q = self.element_pattern_exponent
        if not math.isfinite(q) or q < 0:
            raise ValueError(f"element_pattern_exponent must be finite and >= 0, got {q!r}")
        if not math.isfinite(self.ris_rotation_deg):
            raise ValueError("ris_rotation_deg must be finite")

        t, s, r = (np.asarray(p) for p in (self.tx_pos_m, self.ris_pos_m, self.rx_pos_m))
        for (na, a), (nb, b) in (
            (("TX", t), ("RX", r)),
            (("TX", t), ("RIS", s)),
            (("RX", r), ("RIS", s)),
        ):
            if np.linalg.norm(a - b) == 0.0:
                raise ValueError(f"{na} and {nb} positions coincide at {tuple(a.tolist())}")
        if self.ris_normal is None:
            bis = _unit(t - s) + _unit(r - s)
            if np.linalg.norm(bis) < 1e-9:
                raise ValueError("TX and RX are on opposite sides of the RIS; give ris_normal")
        n = self.normal
        for name, pos in (("TX", self.tx_antenna_positions), ("RX", self.rx_antenna_positions)):
            if np.min((pos - s) @ n) <= 0.0:
                raise ValueError(f"{name} is behind or in the RIS plane (normal {n.round(3)})")

    # ------------------------------------------------------------------ derived geometry
    @property
    def num_elements(self) -> int:
        """Number of RIS elements N."""
        return self.num_rows * self.num_cols

    @property
    def wavelength_m(self) -> float:
        """Carrier wavelength [m]."""
        return SPEED_OF_LIGHT / self.carrier_frequency_hz

    @property
    def spacing_m(self) -> float:
        """RIS element spacing [m] (default lambda/2)."""
        return self.element_spacing_m or self.wavelength_m / 2

    @property
    def ant_spacing_m(self) -> float:
        """TX/RX antenna spacing [m] (default lambda/2)."""
        return self.antenna_spacing_m or self.wavelength_m / 2

    @cached_property
    def normal(self) -> np.ndarray:
        """Unit normal of the RIS (reflecting side), [3]."""
        if self.ris_normal is not None:
            return _unit(np.asarray(self.ris_normal, dtype=np.float64))
        s = np.asarray(self.ris_pos_m)
        return _unit(_unit(np.asarray(self.tx_pos_m) - s) + _unit(np.asarray(self.rx_pos_m) - s))

    @cached_property
    def ris_axes(self) -> tuple[np.ndarray, np.ndarray]:
        """In-plane unit axes (column axis, row axis) of the RIS, each [3]."""
        n = self.normal
        h = np.cross([0.0, 0.0, 1.0], n)
        h = _unit(h) if np.linalg.norm(h) > 1e-9 else np.array([1.0, 0.0, 0.0])
        v = np.cross(n, h)
        a = math.radians(self.ris_rotation_deg)
        return math.cos(a) * h + math.sin(a) * v, -math.sin(a) * h + math.cos(a) * v

    @cached_property
    def element_positions(self) -> np.ndarray:
        """RIS element centres, [N, 3] (row-major: index = row * num_cols + col)."""
        u_col, u_row = self.ris_axes
        d = self.spacing_m
        rows = (np.arange(self.num_rows) - (self.num_rows - 1) / 2) * d
        cols = (np.arange(self.num_cols) - (self.num_cols - 1) / 2) * d
        grid = rows[:, None, None] * u_row + cols[None, :, None] * u_col
        return np.asarray(self.ris_pos_m) + grid.reshape(-1, 3)

    def _default_axis(self) -> np.ndarray:
        link = np.asarray(self.rx_pos_m) - np.asarray(self.tx_pos_m)
        a = np.cross([0.0, 0.0, 1.0], link)
        return _unit(a) if np.linalg.norm(a) > 1e-9 * np.linalg.norm(link) else np.eye(3)[0]

    def _ula(self, centre: _Vec3, axis: _Vec3 | None, num: int) -> np.ndarray:
        ax = self._default_axis() if axis is None else _unit(np.asarray(axis))
        k = (np.arange(num) - (num - 1) / 2) * self.ant_spacing_m
        return np.asarray(centre) + k[:, None] * ax

    @cached_property
    def tx_antenna_positions(self) -> np.ndarray:
        """TX antenna positions, [num_tx_ant, 3]."""
        return self._ula(self.tx_pos_m, self.tx_array_axis, self.num_tx_ant)

    @cached_property
    def rx_antenna_positions(self) -> np.ndarray:
        """RX antenna positions, [num_rx_ant, 3]."""
        return self._ula(self.rx_pos_m, self.rx_array_axis, self.num_rx_ant)

    @property
    def distances_m(self) -> dict[str, float]:
        """Centre-to-centre distances [m]: ``tx_rx``, ``tx_ris``, ``ris_rx``."""
        t, s, r = (np.asarray(p) for p in (self.tx_pos_m, self.ris_pos_m, self.rx_pos_m))
        return {
            "tx_rx": float(np.linalg.norm(r - t)),
            "tx_ris": float(np.linalg.norm(s - t)),
            "ris_rx": float(np.linalg.norm(r - s)),
        }

    @property
    def fraunhofer_distance_m(self) -> float:
        """Fraunhofer distance 2 D^2 / lambda of the RIS aperture (D: its diagonal) [m]."""
        diag = self.spacing_m * math.hypot(self.num_rows, self.num_cols)
        return 2 * diag**2 / self.wavelength_m

    def to_dict(self) -> dict:
        """JSON-ready description: the parameters plus derived figures."""
        out = asdict(self)
        out.update(
            num_elements=self.num_elements,
            wavelength_m=self.wavelength_m,
            element_spacing_m=self.spacing_m,
            antenna_spacing_m=self.ant_spacing_m,
            ris_normal=self.normal.tolist(),
            distances_m=self.distances_m,
            fraunhofer_distance_m=self.fraunhofer_distance_m,
        )
        return out


# ---------------------------------------------------------------------- channel model
def _link(
    src: np.ndarray, dst: np.ndarray, src_c: np.ndarray, dst_c: np.ndarray, near: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Path lengths [M, K] from K sources to M destinations (and the centre distance).

    Near field: exact distances. Far field: first-order (plane-wave) expansion about the
    array centres, ``d0 + k.(dst - dst_c) - k.(src - src_c)`` with ``k`` the unit vector
    from the source centre to the destination centre.
    """
    if near:
        lengths = np.linalg.norm(dst[:, None, :] - src[None, :, :], axis=-1)
    else:
        diff = dst_c - src_c
        d0 = np.linalg.norm(diff)
        k = diff / d0
        lengths = d0 + ((dst - dst_c) @ k)[:, None] - ((src - src_c) @ k)[None, :]
    return lengths, np.asarray(np.linalg.norm(dst_c - src_c))


def cascade_channel(
    h_d: torch.Tensor, h_ru: torch.Tensor, h_br: torch.Tensor, phases: torch.Tensor
) -> torch.Tensor:
    r"""Combine per-link responses into :math:`H = H_d + H_{RU}\,\mathrm{diag}(\phi)\,H_{BR}`.

    :param h_d: [B or 1, F, num_rx_ant, num_tx_ant], `torch.complex`. Direct path.
    :param h_ru: [B or 1, F, num_rx_ant, N], `torch.complex`. RIS -> RX.
    :param h_br: [B or 1, F, N, num_tx_ant], `torch.complex`. TX -> RIS.
    :param phases: [N] or [B, N]: angles [rad] (real) or reflection coefficients (complex).

    :output h: [B, F, num_rx_ant, num_tx_ant], `torch.complex`.
    """
    if phases.is_complex():
        phi = phases.to(h_br.dtype)
    else:
        phi = torch.polar(torch.ones_like(phases), phases).to(h_br.dtype)
    if phi.dim() == 1:
        phi = phi.unsqueeze(0)
    return h_d + torch.matmul(h_ru, phi[:, None, :, None] * h_br)


class RISChannel(Block):
    r"""Per-subcarrier frequency response of a RIS-assisted link (Sionna ``h_freq`` layout).

    For subcarrier frequency :math:`f` (baseband, relative to :math:`f_c`) the channel is

    .. math::
        \mathbf{H}(f) = \mathbf{H}_d(f) + \mathbf{H}_{RU}(f)\,\mathrm{diag}(\boldsymbol\phi)
        \,\mathbf{H}_{BR}(f)

    with every path (TX antenna :math:`t` -> RX antenna :math:`r`, or TX antenna -> RIS
    element :math:`n` -> RX antenna) a free-space ray of length :math:`L` and delay
    :math:`\tau = L/c`, carrying the phase :math:`e^{-j2\pi(f_c+f)\tau}` (beam squint over
    the band included).

    **Amplitudes.** Direct path: Friis, :math:`\lambda/(4\pi d_{rt})`. Cascaded path
    through element :math:`n` (area :math:`d_xd_y`): the free-space RIS path-loss model
    of W. Tang et al., "Wireless communications with reconfigurable intelligent surface:
    path loss modeling and experimental measurement", IEEE Trans. Wireless Commun.,
    20(1):421-439, 2021, Theorem 1 (general case), taken with isotropic TX/RX antennas
    (:math:`G_t=G_r=1`) and unit-cell gain :math:`G = 4\pi d_xd_y/\lambda^2`, which gives
    the per-element amplitude

    .. math::
        a_n = \frac{d_x d_y\,\sqrt{F(\theta^t_n)\,F(\theta^r_n)}}{4\pi\, r^t_n\, r^r_n},
        \qquad F(\theta) = \cos^q\theta,

    :math:`r^t_n, r^r_n` the TX-element and element-RX distances and
    :math:`\theta^t_n, \theta^r_n` the angles to the RIS normal. The near-field mode uses
    exact per-element/per-antenna distances and angles; the far-field mode uses the
    centre distances and angles for amplitudes and plane-wave (first-order) path lengths
    for phases. Amplitudes are evaluated at :math:`\lambda = c/f_c` for all subcarriers.

    **Normalisation.** The returned channel is divided by the free-space amplitude of the
    direct LOS path between the array centres, :math:`\lambda/(4\pi d_0)`, computed even
    when that path is blocked. So the direct link has unit gain per antenna pair, an
    Es/N0 given to the link is the SNR of the (unblocked) direct link, and the RIS shows
    up as extra received SNR. **Timing reference**: delays are taken relative to
    :math:`\tau_0 = d_0/c` in the baseband term, i.e. the receiver is synchronised to the
    LOS delay: :math:`e^{-j2\pi f_c\tau}\,e^{-j2\pi f(\tau-\tau_0)}` (carrier phases stay
    absolute).

    **Small-scale fading** (optional, ``rician_k_db``): every entry of
    :math:`H_d, H_{BR}, H_{RU}` is multiplied, per batch example, by an independent
    :math:`\sqrt{K/(K+1)} + \sqrt{1/(K+1)}\,g`, :math:`g\sim\mathcal{CN}(0,1)` (Rician
    block fading whose scattered part shares the ray's delay; mean power preserved).
    `None` (default): deterministic line-of-sight channel. A ``phase_controller`` sees
    the realised fading of each example (perfect CSI at the RIS controller).

    :param geometry: :class:`RISGeometry` of the link.
    :param rician_k_db: Rician K-factor [dB] or `None` (deterministic).
    :param phase_controller: Optional :class:`RISPhaseController` used when ``phases`` is
        not given to :meth:`call`. With a deterministic channel its (non-random) phases
        are computed once per set of frequencies and cached.
    :param precision: Precision used for internal calculations and outputs.
        If `None`, :attr:`~sionna.phy.config.Config.precision` is used.
    :param device: Device for computation. If `None`,
        :attr:`~sionna.phy.config.Config.device` is used.

    :input batch_size: `int`. Batch size.
    :input num_ofdm_symbols: `int`. Number of OFDM symbols (channel constant over them).
    :input frequencies: [fft_size], `torch.float`. Subcarrier frequencies relative to the
        carrier [Hz], e.g. ``(torch.arange(fft_size) - fft_size // 2) * scs``.
    :input phases: `None` | [N] | [batch_size, N]. RIS phases in radians (real tensor)
        or complex reflection coefficients (used as given). `None`: ask the
        ``phase_controller``.

    :output h_freq: [batch_size, 1, num_rx_ant, 1, num_tx_ant, num_ofdm_symbols,
        fft_size], `torch.complex`. Normalised channel frequency response.

    After a call, :attr:`last_phases` holds the phases used ([batch_size, N]).

    .. rubric:: Examples

    .. code-block:: python

        import torch
        from sionna.phy.channel import ApplyOFDMChannel
        from gsc_phy.ris import RISChannel, RISGeometry, RISPhaseController

        g = RISGeometry(tx_pos_m=(0, -20, 5), ris_pos_m=(10, 0, 5), rx_pos_m=(0, 20, 5),
                        num_rows=8, num_cols=8, direct_path_blocked=True)
        ch = RISChannel(g, phase_controller=RISPhaseController("cophase", bits=2))
        freqs = (torch.arange(64) - 32) * 30e3
        h = ch(4, 14, freqs)
        print(h.shape)
        # torch.Size([4, 1, 1, 1, 1, 14, 64])
        x = torch.ones(4, 1, 1, 14, 64, dtype=torch.complex64)
        y = ApplyOFDMChannel()(x, h, 0.01)
    """

    def __init__(
        self,
        geometry: RISGeometry,
        rician_k_db: float | None = None,
        phase_controller: "RISPhaseController | None" = None,
        precision: Precision | None = None,
        device: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(precision=precision, device=device, **kwargs)
        if not isinstance(geometry, RISGeometry):
            raise ValueError("geometry must be a RISGeometry")
        if rician_k_db is not None and not math.isfinite(rician_k_db):
            raise ValueError(f"rician_k_db must be finite or None, got {rician_k_db!r}")
        self._geometry = geometry
        self._rician_k_db = rician_k_db
        self._phase_controller = phase_controller
        self._phase_cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self.last_phases: torch.Tensor | None = None
        self._precompute()

    # -------------------------------------------------------------- static ray geometry
    def _precompute(self) -> None:
        g = self._geometry
        lam, near, c = g.wavelength_m, g.near_field, SPEED_OF_LIGHT
        tx, rx, el = g.tx_antenna_positions, g.rx_antenna_positions, g.element_positions
        tc, rc, sc = (np.asarray(p) for p in (g.tx_pos_m, g.rx_pos_m, g.ris_pos_m))
        n, q = g.normal, g.element_pattern_exponent

        l_d, d0 = _link(tx, rx, tc, rc, near)  # [Nr, Nt]
        l_br, d_t = _link(tx, el, tc, sc, near)  # [N, Nt]
        l_ru, d_r = _link(el, rx, sc, rc, near)  # [Nr, N]
        self._d0 = float(d0)
        ref = lam / (4 * np.pi * d0)  # free-space LOS amplitude used for normalisation

        if near:
            a_d = (lam / (4 * np.pi * l_d)) / ref
            cos_t = ((tx[None, :, :] - el[:, None, :]) @ n) / l_br  # [N, Nt]
            cos_r = ((rx[:, None, :] - el[None, :, :]) @ n) / l_ru  # [Nr, N]
            r_t, r_r = l_br, l_ru
        else:
            a_d = np.ones_like(l_d)
            cos_t = np.full_like(l_br, float((tc - sc) @ n) / float(d_t))
            cos_r = np.full_like(l_ru, float((rc - sc) @ n) / float(d_r))
            r_t, r_r = np.full_like(l_br, float(d_t)), np.full_like(l_ru, float(d_r))
        if g.direct_path_blocked:
            a_d = np.zeros_like(a_d)
        # a_n / ref = dx dy d0 sqrt(F_t F_r) / (lam r_t r_r), split evenly over the two hops
        scale = math.sqrt(g.spacing_m**2 * d0 / lam)
        a_br = scale * np.clip(cos_t, 0.0, None) ** (q / 2) / r_t
        a_ru = scale * np.clip(cos_r, 0.0, None) ** (q / 2) / r_r

        def carrier_phase(lengths):  # -2 pi fc L / c, wrapped in float64
            return np.remainder(-2 * np.pi * (lengths / lam), 2 * np.pi)

        tau0 = d0 / c
        f64 = dict(dtype=torch.float64, device=self.device)

        # (amplitude, carrier phase, excess delay for the baseband term)
        def pack(amp, lengths, tau_ref):
            return tuple(
                torch.as_tensor(x, **f64)
                for x in (amp, carrier_phase(lengths), lengths / c - tau_ref)
            )

        # the LOS delay is removed once per path: on the direct path and on the first hop
        self._links = {
            "d": pack(a_d, l_d, tau0),
            "br": pack(a_br, l_br, tau0),
            "ru": pack(a_ru, l_ru, 0.0),
        }

    # ------------------------------------------------------------------------ properties
    @property
    def geometry(self) -> RISGeometry:
        """The link geometry."""
        return self._geometry

    @property
    def num_elements(self) -> int:
        """Number of RIS elements N."""
        return self._geometry.num_elements

    @property
    def rician_k_db(self) -> float | None:
        """Rician K-factor [dB], `None` for the deterministic channel."""
        return self._rician_k_db

    @property
    def los_amplitude(self) -> float:
        """Free-space amplitude lambda/(4 pi d0) of the direct LOS path (the normaliser)."""
        return self._geometry.wavelength_m / (4 * math.pi * self._d0)

    @property
    def phase_controller(self) -> "RISPhaseController | None":
        """Phase controller used when :meth:`call` gets no phases."""
        return self._phase_controller

    # ---------------------------------------------------------------------------- paths
    def _response(self, key: str, frequencies: torch.Tensor) -> torch.Tensor:
        amp, psi, tau = self._links[key]
        f = frequencies.to(torch.float64).reshape(-1, 1, 1)
        arg = torch.remainder(psi - 2 * np.pi * f * tau, 2 * np.pi)
        return torch.polar(amp.expand_as(arg), arg).to(self.cdtype)  # [F, M, K]

    def _fading(self, batch_size: int, shape: torch.Size) -> torch.Tensor:
        k = 10.0 ** (self._rician_k_db / 10.0)
        std = math.sqrt(0.5 / (k + 1.0))
        size = (batch_size, 1, *shape)
        re = torch.randn(size, generator=self.torch_rng, device=self.device, dtype=self.dtype)
        im = torch.randn(size, generator=self.torch_rng, device=self.device, dtype=self.dtype)
        return math.sqrt(k / (k + 1.0)) + std * torch.complex(re, im)

    def paths(
        self, batch_size: int, frequencies: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised per-link responses (draws the fading if ``rician_k_db`` is set).

        :param batch_size: Batch size B.
        :param frequencies: [F] subcarrier frequencies relative to the carrier [Hz].

        :output h_d: [B', F, num_rx_ant, num_tx_ant], `torch.complex`. Direct path.
        :output h_ru: [B', F, num_rx_ant, N], `torch.complex`. RIS -> RX.
        :output h_br: [B', F, N, num_tx_ant], `torch.complex`. TX -> RIS.

        ``B' = 1`` for the deterministic channel (broadcasts against any batch),
        ``B' = batch_size`` with fading.
        """
        frequencies = torch.as_tensor(frequencies, device=self.device).reshape(-1)
        out = []
        for key in ("d", "ru", "br"):
            h = self._response(key, frequencies).unsqueeze(0)
            if self._rician_k_db is not None:
                h = h * self._fading(batch_size, h.shape[2:])
            out.append(h)
        return out[0], out[1], out[2]

    def cascade(
        self, h_d: torch.Tensor, h_ru: torch.Tensor, h_br: torch.Tensor, phases: torch.Tensor
    ) -> torch.Tensor:
        """:func:`cascade_channel` on this block's device/precision, [B, F, Nr, Nt]."""
        return cascade_channel(h_d, h_ru, h_br, self._check_phases(phases))

    def _check_phases(self, phases: torch.Tensor) -> torch.Tensor:
        phases = torch.as_tensor(phases, device=self.device)
        if phases.dim() not in (1, 2) or phases.shape[-1] != self.num_elements:
            raise ValueError(
                f"phases must have shape [N] or [batch, N] with N={self.num_elements}, "
                f"got {tuple(phases.shape)}"
            )
        return phases.to(self.cdtype if phases.is_complex() else self.dtype)

    @staticmethod
    def to_ofdm(h: torch.Tensor, num_ofdm_symbols: int) -> torch.Tensor:
        """[B, F, Nr, Nt] -> [B, 1, Nr, 1, Nt, num_ofdm_symbols, F] (a broadcast view)."""
        h = h.permute(0, 2, 3, 1)[:, None, :, None, :, None, :]
        return h.expand(-1, -1, -1, -1, -1, num_ofdm_symbols, -1)

    def _controller_phases(self, batch_size, h_d, h_ru, h_br, frequencies) -> torch.Tensor:
        ctrl = self._phase_controller
        if ctrl is None:
            raise ValueError("no phases given and RISChannel has no phase_controller")
        deterministic = self._rician_k_db is None and ctrl.strategy != "random"
        if not deterministic:
            h_d, h_ru, h_br = (h.expand(batch_size, *h.shape[1:]) for h in (h_d, h_ru, h_br))
            return ctrl(h_d, h_ru, h_br, frequencies)
        if self._phase_cache is not None and torch.equal(self._phase_cache[0], frequencies):
            return self._phase_cache[1].expand(batch_size, -1)
        phases = ctrl(h_d, h_ru, h_br, frequencies)  # [1, N]
        self._phase_cache = (frequencies.clone(), phases)
        return phases.expand(batch_size, -1)

    def call(
        self,
        batch_size: int,
        num_ofdm_symbols: int,
        frequencies: torch.Tensor,
        phases: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Generate the normalised RIS channel frequency response."""
        if int(batch_size) < 1 or int(num_ofdm_symbols) < 1:
            raise ValueError("batch_size and num_ofdm_symbols must be >= 1")
        frequencies = torch.as_tensor(frequencies, device=self.device).reshape(-1)
        if not frequencies.is_floating_point():
            frequencies = frequencies.to(self.dtype)
        h_d, h_ru, h_br = self.paths(batch_size, frequencies)
        if phases is None:
            phases = self._controller_phases(batch_size, h_d, h_ru, h_br, frequencies)
        phases = self._check_phases(phases)
        if phases.dim() == 1:
            phases = phases.unsqueeze(0).expand(batch_size, -1)
        elif phases.shape[0] != batch_size:
            raise ValueError(f"phases batch {phases.shape[0]} != batch_size {batch_size}")
        self.last_phases = phases
        h = cascade_channel(h_d, h_ru, h_br, phases)
        return self.to_ofdm(h, int(num_ofdm_symbols))


# ------------------------------------------------------------------- phase configuration
def random_phases(
    batch_size: int,
    num_elements: int,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """I.i.d. uniform RIS phases in [0, 2 pi).

    :param batch_size: Number of configurations B.
    :param num_elements: Number of RIS elements N.
    :param generator: Optional `torch.Generator` (must live on ``device``).
    :param device: Output device.
    :param dtype: Output (real) dtype.

    :output phases: [B, N], angles in radians.
    """
    u = torch.rand(batch_size, num_elements, generator=generator, device=device, dtype=dtype)
    return 2 * math.pi * u


def _ref_index(frequencies: torch.Tensor | None, num_freqs: int) -> int:
    if frequencies is None:
        return num_freqs // 2
    return int(torch.argmin(torch.as_tensor(frequencies).reshape(-1).abs()))


def cophase_phases(
    h_d: torch.Tensor,
    h_ru: torch.Tensor,
    h_br: torch.Tensor,
    frequencies: torch.Tensor | None = None,
    rx_ant: int = 0,
    tx_ant: int = 0,
) -> torch.Tensor:
    r"""Co-phasing RIS configuration (SISO optimum at the centre frequency).

    Every cascaded element path :math:`[H_{RU}]_{r,n}[H_{BR}]_{n,t}` is rotated onto the
    phase of the direct path :math:`[H_d]_{r,t}`; with a blocked direct path
    (:math:`H_d=0`) they are aligned with each other (reference phase 0). Maximises
    :math:`|H_{r,t}|` at the subcarrier closest to the carrier. For arrays it uses the
    antenna pair (``rx_ant``, ``tx_ant``); for MIMO prefer
    :func:`optimize_phases_capacity`.

    :param h_d: [B, F, Nr, Nt], `torch.complex`. Direct path.
    :param h_ru: [B, F, Nr, N], `torch.complex`. RIS -> RX.
    :param h_br: [B, F, N, Nt], `torch.complex`. TX -> RIS.
    :param frequencies: [F] subcarrier frequencies [Hz] or `None` (use index F // 2).
    :param rx_ant: RX antenna index of the pair to co-phase.
    :param tx_ant: TX antenna index of the pair to co-phase.

    :output phases: [B, N], angles in radians in [0, 2 pi).
    """
    k = _ref_index(frequencies, h_d.shape[1])
    cascaded = h_ru[:, k, rx_ant, :] * h_br[:, k, :, tx_ant]  # [B, N]
    target = torch.angle(h_d[:, k, rx_ant, tx_ant]).unsqueeze(-1)
    return torch.remainder(target - torch.angle(cascaded), 2 * math.pi)


def quantize_phases(phases: torch.Tensor, bits: int | None) -> torch.Tensor:
    r"""Quantise phases to the nearest of the :math:`2^b` levels :math:`2\pi k/2^b`.

    :param phases: [...], angles in radians (real) or complex coefficients (their angle
        is used).
    :param bits: Number of phase bits b >= 1, or `None` (return the angles unchanged).

    :output phases: [...], quantised angles in [0, 2 pi).

    For phases whose quantisation errors are uniform on :math:`[-\pi/2^b, \pi/2^b]`, a
    co-phased N-element RIS loses :math:`\mathrm{sinc}^2(\pi/2^b)` of its power gain
    for large N (:math:`\mathrm{sinc}(x) = \sin x / x`): 3.9, 0.9, 0.2 dB for b = 1, 2, 3.
    """
    if phases.is_complex():
        phases = torch.angle(phases)
    if bits is None:
        return phases
    if isinstance(bits, bool) or int(bits) != bits or bits < 1:
        raise ValueError(f"bits must be an integer >= 1 or None, got {bits!r}")
    levels = 2 ** int(bits)
    step = 2 * math.pi / levels
    return torch.remainder(torch.round(phases / step), levels) * step


def capacity_objective(h: torch.Tensor, snr_db: float | torch.Tensor) -> torch.Tensor:
    r"""Mean over subcarriers of :math:`\log_2\det(I + \frac{\mathrm{snr}}{N_t} H H^H)`.

    :param h: [B, F, Nr, Nt], `torch.complex`. Channel per subcarrier (normalised as in
        :class:`RISChannel`, so ``snr`` is the Es/N0 of the direct link).
    :param snr_db: SNR [dB] (total transmit power over noise per receive antenna).

    :output c: [B], `torch.float`. Spectral efficiency [bit/s/Hz], equal power per
        TX antenna.
    """
    nr, nt = h.shape[-2], h.shape[-1]
    snr = 10.0 ** (torch.as_tensor(snr_db, dtype=h.real.dtype, device=h.device) / 10.0)
    gram = h @ h.mH if nr <= nt else h.mH @ h
    eye = torch.eye(gram.shape[-1], dtype=h.dtype, device=h.device)
    chol = torch.linalg.cholesky(eye + (snr / nt) * gram)
    logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1).real).sum(-1)
    return (logdet / math.log(2.0)).mean(-1)


def _capacity_gradient(
    h_d: torch.Tensor, h_ru: torch.Tensor, h_br: torch.Tensor, phi: torch.Tensor, snr: float
) -> torch.Tensor:
    r"""Conjugate-Wirtinger gradient of the capacity objective w.r.t. :math:`\phi`, [B, N].

    With :math:`M_f = (I + aH_fH_f^H)^{-1}`, :math:`a = \mathrm{snr}/N_t`:
    :math:`\partial C/\partial\phi_n^* = \frac{a}{F\ln 2}\sum_f
    [H_{RU,f}^H M_f H_f H_{BR,f}^H]_{nn}`.
    """
    h = cascade_channel(h_d, h_ru, h_br, phi)
    nr, nt = h.shape[-2], h.shape[-1]
    a = snr / nt
    eye = torch.eye(nr, dtype=h.dtype, device=h.device)
    chol = torch.linalg.cholesky(eye + a * (h @ h.mH))
    mh = torch.cholesky_solve(h, chol)  # M H, [B, F, Nr, Nt]
    g = torch.einsum("bfrn,bfrt,bfnt->bn", h_ru.conj(), mh, h_br.conj())
    return g * (a / (h.shape[1] * math.log(2.0)))


def optimize_phases_capacity(
    h_d: torch.Tensor,
    h_ru: torch.Tensor,
    h_br: torch.Tensor,
    snr_db: float,
    num_iter: int = 100,
    init: torch.Tensor | None = None,
    frequencies: torch.Tensor | None = None,
    max_subcarriers: int | None = None,
) -> torch.Tensor:
    r"""Capacity-maximising RIS phases by projected gradient ascent on the unit circle.

    Maximises :func:`capacity_objective` (mean over subcarriers of
    :math:`\log_2\det(I + \frac{\mathrm{snr}}{N_t}HH^H)`) over unit-modulus
    :math:`\phi`. Each step moves :math:`\phi` along the Riemannian (tangent) part of
    the analytic gradient :math:`\partial C/\partial\phi^* = \frac{a}{F\ln2}\sum_f
    \mathrm{diag}(H_{RU,f}^H (I + aH_fH_f^H)^{-1} H_f H_{BR,f}^H)`, :math:`a =
    \mathrm{snr}/N_t`, projects back onto :math:`|\phi_n| = 1`, and is kept only if the
    objective grows (per-example step size, x1.5 on success, /2 on failure), so the
    objective never decreases from the initial point. Stops early when every example's
    moves fall below 1e-6 rad.

    :param h_d: [B, F, Nr, Nt], `torch.complex`. Direct path.
    :param h_ru: [B, F, Nr, N], `torch.complex`. RIS -> RX.
    :param h_br: [B, F, N, Nt], `torch.complex`. TX -> RIS.
    :param snr_db: SNR [dB] used in the objective (Es/N0 of the direct link).
    :param num_iter: Maximum number of gradient steps.
    :param init: [B, N] initial angles; `None`: :func:`cophase_phases`.
    :param frequencies: [F] frequencies, only used by the co-phasing initialisation.
    :param max_subcarriers: If set, optimise the mean over at most this many evenly
        spaced subcarriers (cheaper; the objective is smooth over the band).

    :output phases: [B, N], angles in radians in [0, 2 pi).
    """
    if init is None:
        init = cophase_phases(h_d, h_ru, h_br, frequencies)
    h_d, h_ru, h_br = h_d.detach(), h_ru.detach(), h_br.detach()
    num_f = max(h_d.shape[1], h_ru.shape[1], h_br.shape[1])
    if max_subcarriers is not None and num_f > max_subcarriers:
        idx = torch.linspace(0, num_f - 1, int(max_subcarriers), device=h_br.device).round()
        idx = idx.long()
        h_d, h_ru, h_br = (
            x.index_select(1, idx) if x.shape[1] > 1 else x for x in (h_d, h_ru, h_br)
        )
    b = max(h_d.shape[0], h_ru.shape[0], h_br.shape[0], init.shape[0] if init.dim() == 2 else 1)
    theta = init.reshape(-1, init.shape[-1]).expand(b, -1).detach().to(h_br.real.dtype)
    phi = torch.polar(torch.ones_like(theta), theta).to(h_br.dtype)
    snr = 10.0 ** (float(snr_db) / 10.0)

    def objective(p):
        return capacity_objective(cascade_channel(h_d, h_ru, h_br, p), snr_db)

    with torch.no_grad():
        best = objective(phi)
        step = None
        for _ in range(int(num_iter)):
            grad = _capacity_gradient(h_d, h_ru, h_br, phi, snr)
            grad = grad - (grad * phi.conj()).real * phi  # tangent to |phi_n| = 1
            gmax = grad.abs().amax(-1)
            if step is None:
                step = 0.3 / gmax.clamp_min(1e-30)  # first move <= 0.3 rad
            if bool(torch.all(step * gmax < 1e-6)):
                break
            trial = phi + step[:, None] * grad
            trial = trial / trial.abs().clamp_min(1e-30)
            val = objective(trial)
            ok = val > best
            phi = torch.where(ok[:, None], trial, phi)
            best = torch.where(ok, val, best)
            step = torch.where(ok, step * 1.5, step * 0.5)
    return torch.remainder(torch.angle(phi), 2 * math.pi)


class RISPhaseController(Block):
    """RIS phase configuration: ``random``, ``cophase`` or ``optimized``, then optional
    b-bit quantisation.

    - ``random``: :func:`random_phases` (i.i.d. uniform, drawn from the block's RNG).
    - ``cophase``: :func:`cophase_phases` (SISO optimum at the centre subcarrier).
    - ``optimized``: :func:`optimize_phases_capacity` at ``snr_db`` from the co-phasing
      start (for SISO it refines co-phasing over the whole band).

    With ``bits`` the result is quantised by :func:`quantize_phases` (nearest of
    :math:`2\\pi k/2^b`).

    :param strategy: ``"random"`` | ``"cophase"`` (default) | ``"optimized"``.
    :param bits: Phase resolution b >= 1, or `None` (continuous phases).
    :param snr_db: SNR [dB] of the capacity objective (``optimized`` only).
    :param num_iter: Maximum gradient steps (``optimized`` only).
    :param max_subcarriers: Subcarriers (evenly spaced) in the optimised objective
        (``optimized`` only; `None`: all).
    :param precision: Precision used for internal calculations and outputs.
    :param device: Device for computation.

    :input h_d: [B, F, Nr, Nt], `torch.complex`. Direct path (see :meth:`RISChannel.paths`).
    :input h_ru: [B, F, Nr, N], `torch.complex`. RIS -> RX.
    :input h_br: [B, F, N, Nt], `torch.complex`. TX -> RIS.
    :input frequencies: [F], `torch.float`. Subcarrier frequencies [Hz].

    :output phases: [B, N], `torch.float`. Angles in radians in [0, 2 pi).

    .. code-block:: python

        import torch
        from gsc_phy.ris import RISChannel, RISGeometry, RISPhaseController

        g = RISGeometry((0, -20, 5), (10, 0, 5), (0, 20, 5), num_rows=4, num_cols=4)
        ch = RISChannel(g)
        freqs = (torch.arange(16) - 8) * 30e3
        h_d, h_ru, h_br = ch.paths(1, freqs)
        phases = RISPhaseController("cophase", bits=1)(h_d, h_ru, h_br, freqs)
        print(phases.shape)
        # torch.Size([1, 16])
    """

    def __init__(
        self,
        strategy: str = "cophase",
        bits: int | None = None,
        snr_db: float = 10.0,
        num_iter: int = 100,
        max_subcarriers: int | None = 64,
        precision: Precision | None = None,
        device: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(precision=precision, device=device, **kwargs)
        if strategy not in PHASE_STRATEGIES:
            raise ValueError(f"strategy must be one of {PHASE_STRATEGIES}, got {strategy!r}")
        if bits is not None and (isinstance(bits, bool) or int(bits) != bits or bits < 1):
            raise ValueError(f"bits must be an integer >= 1 or None, got {bits!r}")
        if int(num_iter) < 0 or not math.isfinite(snr_db):
            raise ValueError("num_iter must be >= 0 and snr_db finite")
        self._strategy = strategy
        self._bits = None if bits is None else int(bits)
        self._snr_db = float(snr_db)
        self._num_iter = int(num_iter)
        if max_subcarriers is not None and int(max_subcarriers) < 1:
            raise ValueError("max_subcarriers must be >= 1 or None")
        self._max_subcarriers = max_subcarriers

    @property
    def strategy(self) -> str:
        """Phase strategy name."""
        return self._strategy

    @property
    def bits(self) -> int | None:
        """Phase resolution in bits (`None`: continuous)."""
        return self._bits

    def call(
        self,
        h_d: torch.Tensor,
        h_ru: torch.Tensor,
        h_br: torch.Tensor,
        frequencies: torch.Tensor,
    ) -> torch.Tensor:
        """Choose RIS phases for the given per-link responses."""
        b = max(h_d.shape[0], h_ru.shape[0], h_br.shape[0])
        if self._strategy == "random":
            phases = random_phases(
                b, h_br.shape[-2], self.torch_rng, device=self.device, dtype=self.dtype
            )
        elif self._strategy == "cophase":
            phases = cophase_phases(h_d, h_ru, h_br, frequencies)
        else:
            phases = optimize_phases_capacity(
                h_d,
                h_ru,
                h_br,
                self._snr_db,
                self._num_iter,
                frequencies=frequencies,
                max_subcarriers=self._max_subcarriers,
            )
        return quantize_phases(phases.to(self.dtype), self._bits)
