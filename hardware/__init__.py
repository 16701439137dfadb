"""hardware: radio profiles and device checks (radio interpreter)."""
