"""Visualisation helpers: PCA renderings of feature maps, heat-map overlays, panel grids, the feature figure."""
from .feature_figure import (attention_query_size, feature_figure, load_guidance_image, parse_points,
                             query_attention)
from .panels import draw_marker, heat_colors, overlay_heatmap, save_panel_grid
from .pca import denormalize_image, fit_pca, pca_rgb, save_panel_row

__all__ = [
    'fit_pca', 'pca_rgb', 'denormalize_image', 'save_panel_row', 'save_panel_grid', 'heat_colors', 'overlay_heatmap',
    'draw_marker', 'feature_figure', 'load_guidance_image', 'parse_points', 'query_attention',
    'attention_query_size'
]
