"""Foundation-model backbones returning NCHW feature maps together with the guidance image."""
from .timm_vit import TimmBackbone, TimmViT

__all__ = ['TimmBackbone', 'TimmViT']
