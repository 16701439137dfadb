"""Application scenarios of gsc (issue #6): ``gsc scenario road|meeting``.

- :mod:`.common` — link spec parsing, per-SNR tables (JSON + markdown), GIF/side-by-side
  grids, metric-vs-SNR plots and the HTML report shared by every scenario.
- :mod:`.layered_link` — unequal error protection: layered bits, one MCS per layer, at a
  bandwidth-ratio budget; and the single-MCS design at the same budget.
- :mod:`.road` — road monitoring (class map + perceptual latent, regenerated scene).
- :mod:`.cli` — the ``gsc scenario`` click group.
"""
