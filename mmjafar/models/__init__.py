from .backbones import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403  (the mmseg decode heads only with mmseg)
from .layers import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .upsamplers import *  # noqa: F401,F403
from .pretrain import *  # noqa: F401,F403

try:  # mmseg adapters (decode heads, segmentors): only with mmsegmentation (and mmcv) installed
    import mmseg  # noqa: F401
except ImportError:
    mmseg = None
if mmseg is not None:
    from .necks.guided_multilevel_neck import GuidedMultiLevelNeck  # noqa: F401
    from .segmentors import *  # noqa: F401,F403
