"""BEV datasets (registered at import)."""
