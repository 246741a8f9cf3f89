"""MaskCLIP-style dense CLIP for zero-shot open-vocabulary segmentation (torch and timm; open_clip for text).

Image side (MaskCLIP, Zhou et al. 2022): in the last transformer block the query-key attention is skipped and
every patch token keeps its own *value* embedding, passed through the attention output projection, the residual
and the MLP, then the final LayerNorm. These per-token features (768-d for ViT-B/16) are what an upsampler
upsamples; the visual projection into the joint image-text space (768 -> 512) is applied per pixel afterwards
(it is per-token, so upsampling before or after it sees the same token map, and 768-d features match what
JAFAR's CLIP checkpoints were trained on). Each pixel's class is the text embedding with the largest cosine.

Text side: class-name prompts through the CLIP text tower of ``open_clip`` (maintained by the LAION /
mlfoundations community, ships the BPE tokenizer inside the wheel so prompts encode offline, and loads OpenAI's
original ViT-B/16 weights by name or any local checkpoint file). The visual tower comes from timm's conversion of
the same OpenAI weights (``vit_base_patch16_clip_224.openai``), the backbone family of the JAFAR CLIP checkpoints.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmjafar.utils.normalization import IMAGENET_MEAN, IMAGENET_STD
from .gradcam import build_vit_classifier

#: prompt templates averaged per class (short generic photo captions).
DEFAULT_TEMPLATES = ('a photo of a {}.', 'a photo of the {}.', 'a picture of a {}.', 'an image of the {}.',
                     'a close-up photo of the {}.', 'a photo of a small {}.', 'a photo of a large {}.',
                     'there is a {} in the scene.')

#: dataset class names (mmseg spellings) rewritten as words for the text tower.
PROMPT_NAMES = {'diningtable': 'dining table', 'pottedplant': 'potted plant', 'tvmonitor': 'tv monitor',
                'windowpane': 'window'}


def prompt_names(class_names: Sequence[str]) -> List[str]:
    """Dataset class names as the words fed to the text tower (e.g. 'pottedplant' -> 'potted plant')."""
    return [PROMPT_NAMES.get(name, name.replace('_', ' ')) for name in class_names]


class DenseCLIP(nn.Module):
    """Frozen timm CLIP ViT returning MaskCLIP dense features; :meth:`project` maps them into the joint space.

    ``forward(image)``: ImageNet-normalised ``(B, 3, H, W)`` (re-normalised to CLIP's statistics inside) ->
    ``(B, C, H/p, W/p)`` value-path features after the final LayerNorm. ``project(features)``:
    ``(B, C, H', W') -> (B, D, H', W')`` unit vectors in the joint image-text space.

    Args:
        model_name: timm CLIP ViT (its head is CLIP's visual projection).
        pretrained, checkpoint, random_init: weights, as for :func:`~mmjafar.evaluation.gradcam.build_vit_classifier`.
        model_kwargs: extra ``timm.create_model`` arguments (e.g. a tiny ``depth`` for tests).
    """

    def __init__(self, model_name: str = 'vit_base_patch16_clip_224.openai', pretrained: bool = True,
                 checkpoint: Optional[str] = None, random_init: bool = False,
                 model_kwargs: Optional[Dict] = None) -> None:
        super().__init__()
        kwargs = dict(dynamic_img_size=True, **dict(model_kwargs or {}))
        self.vit = build_vit_classifier(model_name, pretrained, checkpoint, random_init, kwargs)
        if not isinstance(getattr(self.vit, 'head', None), nn.Linear):
            raise ValueError(f'DenseCLIP: {model_name} has no linear head; use a timm CLIP ViT such as '
                             'vit_base_patch16_clip_224.openai (its head is the visual projection)')
        self.patch_size = int(self.vit.patch_embed.patch_size[0])
        self.embed_dim = int(self.vit.embed_dim)
        self.out_dim = int(self.vit.head.out_features)
        cfg = self.vit.pretrained_cfg
        mean = torch.tensor(cfg.get('mean', IMAGENET_MEAN)).view(1, 3, 1, 1)
        std = torch.tensor(cfg.get('std', IMAGENET_STD)).view(1, 3, 1, 1)
        self.register_buffer('_scale', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) / std, persistent=False)
        self.register_buffer('_shift', (torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) - mean) / std,
                             persistent=False)

    def train(self, mode: bool = True):  # frozen
        return super().train(False)

    def _value_path(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The last block with its attention replaced by each token's own projected value."""
        attn = block.attn
        dim = x.shape[-1]
        bias = None if attn.qkv.bias is None else attn.qkv.bias[2 * dim:]
        v = F.linear(block.norm1(x), attn.qkv.weight[2 * dim:], bias)
        v = attn.proj(getattr(attn, 'norm', nn.Identity())(v))
        x = x + block.ls1(v)
        return x + block.ls2(block.mlp(block.norm2(x)))

    @torch.no_grad()
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.dim() != 4 or image.shape[-2] % self.patch_size or image.shape[-1] % self.patch_size:
            raise ValueError(f'DenseCLIP: expected (B, 3, H, W) with H, W multiples of {self.patch_size}, got '
                             f'{tuple(image.shape)}')
        vit = self.vit
        x = image * self._scale + self._shift
        tokens = vit.patch_embed(x)
        batch, grid_h, grid_w = tokens.shape[:3]
        tokens = vit.norm_pre(vit.patch_drop(vit._pos_embed(tokens)))
        for block in vit.blocks[:-1]:
            tokens = block(tokens)
        tokens = vit.norm(self._value_path(vit.blocks[-1], tokens))[:, vit.num_prefix_tokens:]
        return tokens.reshape(batch, grid_h, grid_w, -1).permute(0, 3, 1, 2).contiguous()

    @torch.no_grad()
    def project(self, features: torch.Tensor) -> torch.Tensor:
        """Per-pixel visual projection and L2 normalisation, ``(B, C, H, W) -> (B, D, H, W)``."""
        head = self.vit.head
        out = torch.einsum('bchw,dc->bdhw', features.to(head.weight.dtype), head.weight)
        if head.bias is not None:
            out = out + head.bias.view(1, -1, 1, 1)
        return F.normalize(out, dim=1)


def cosine_logits(pixel_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """Unit pixel embeddings ``(B, D, H, W)`` and unit class embeddings ``(K, D)`` -> cosines ``(B, K, H, W)``."""
    if pixel_embeddings.shape[1] != text_embeddings.shape[1]:
        raise ValueError(f'pixel embeddings have {pixel_embeddings.shape[1]} dims, text embeddings '
                         f'{text_embeddings.shape[1]}: the text tower must belong to the same CLIP model')
    return torch.einsum('bdhw,kd->bkhw', pixel_embeddings, text_embeddings.to(pixel_embeddings))


@torch.no_grad()
def clip_text_embeddings(class_names: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES,
                         model_name: str = 'ViT-B-16', pretrained: Optional[str] = 'openai',
                         model: Optional[nn.Module] = None, device: str = 'cpu') -> torch.Tensor:
    """Unit class embeddings ``(K, D)``: each class's prompts through the open_clip text tower, averaged.

    ``pretrained`` is an open_clip tag ('openai', downloaded when the hub is reachable) or a local checkpoint
    file; pass ``model`` to use an already built open_clip model instead.
    """
    try:
        import open_clip
    except ImportError as err:
        raise ImportError('the text side needs open_clip: pip install open_clip_torch (requirements/mm.txt), or '
                          'pass precomputed text embeddings (text_embeddings=path.pt)') from err
    if model is None:
        try:
            model = open_clip.create_model(model_name, pretrained=pretrained, device=device)
        except Exception as err:  # download errors differ by version (HTTP, hub, file)
            raise RuntimeError(f'could not load the open_clip {model_name} text tower with pretrained='
                               f'{pretrained!r} ({type(err).__name__}: {err}); make the hub reachable, pass a local '
                               'checkpoint file, or precomputed text embeddings') from err
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    names = prompt_names(class_names)
    tokens = tokenizer([t.format(n) for n in names for t in templates]).to(device)
    emb = F.normalize(model.encode_text(tokens).float(), dim=-1)
    emb = emb.view(len(names), len(templates), -1).mean(1)
    return F.normalize(emb, dim=-1).cpu()
