"""gsc_semantic: data, semantic encoders, quantiser, diffusion decoder, baselines, metrics."""
