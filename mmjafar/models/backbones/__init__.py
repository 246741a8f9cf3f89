"""Foundation-model backbones returning NCHW patch features together with the guidance image."""
from .timm_vit import TimmViT

__all__ = ['TimmViT']
