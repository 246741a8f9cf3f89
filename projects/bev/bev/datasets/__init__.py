"""BEV datasets (registered at import)."""
from .bev_transforms import RandomBEVTransform, RasterizeBEVTargets, rasterize_bev_targets  # noqa: F401
from .data_preprocessor import BEVDataPreprocessor  # noqa: F401
from .formatting import PackBEVInputs  # noqa: F401
from .image_transforms import LoadMultiViewImages, MultiViewImageAffineAug  # noqa: F401
from .nuscenes_bev import NuScenesBEVDataset, load_bev_infos  # noqa: F401
from .synthetic import make_synthetic_nuscenes  # noqa: F401
