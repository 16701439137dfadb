"""flowgraphs: GNU Radio blocks and flowgraphs of gsc (radio interpreter only)."""
