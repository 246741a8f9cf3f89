"""BEV evaluation (registered at import)."""
from .bev_iou_metric import BEVIoUMetric, confusion_counts  # noqa: F401
