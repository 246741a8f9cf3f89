"""BEV models (registered at import)."""
