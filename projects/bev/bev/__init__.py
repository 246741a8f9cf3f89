"""mmjafar BEV project: SimpleBEV, PointBeV and BEVFormer vehicle segmentation on nuScenes with a pluggable
feature upsampler. Importing this package registers its datasets, transforms, models and metrics into mmjafar's
registries (and mmengine's roots), so configs only need ``custom_imports=dict(imports=['projects.bev.bev'])``.
Nothing in ``mmjafar`` imports this package."""
from . import datasets, evaluation, models  # noqa: F401  (registration)
from .geometry import CAMERA_NAMES, BEVGrid  # noqa: F401
