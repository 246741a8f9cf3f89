"""BEV models (registered at import)."""
from . import bevformer, deform_attn  # noqa: F401,E402
