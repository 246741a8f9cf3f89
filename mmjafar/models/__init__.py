from .layers import *  # noqa: F401,F403
from .upsamplers import *  # noqa: F401,F403
