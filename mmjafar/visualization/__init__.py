"""Visualisation helpers: PCA renderings of feature maps and image panels."""
from .pca import denormalize_image, fit_pca, pca_rgb, save_panel_row

__all__ = ['fit_pca', 'pca_rgb', 'denormalize_image', 'save_panel_row']
