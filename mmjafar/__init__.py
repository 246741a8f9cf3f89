"""mmjafar: JAFAR and other feature upsamplers for OpenMMLab.

Importing the package registers every module in mmjafar's registries and in mmengine's root registries, so
``type='JAFAR'`` works from mmseg / mmdet3d configs after ``custom_imports=dict(imports=['mmjafar'])``.
Only torch and mmengine are needed for the core; OpenMMLab adapters are imported when their packages exist.
"""
__version__ = '0.1.0'

from .utils.config import register_config_package  # noqa: E402

register_config_package()  # mmjafar::<path> config names (see mmjafar/utils/config.py)

from . import models  # noqa: F401,E402  (first: datasets, evaluation and engine use it)
from . import datasets, evaluation, engine  # noqa: F401,E402  (evaluation registers OpenVocabSegmentor with mmseg)
from .structures import GuidedFeatures  # noqa: E402

__all__ = ['GuidedFeatures', '__version__']
