"""BEV models (registered at import)."""
from . import bevformer, deform_attn  # noqa: F401,E402
from . import coord_embed, sparse_ops, sparse_unet  # noqa: F401,E402
from . import heads, image_branch, lifting, losses, necks, resnet_unet, segmentor, simplebev  # noqa: F401,E402
from . import pointbev  # noqa: F401,E402
