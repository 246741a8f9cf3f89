"""BEV evaluation (registered at import)."""
