"""Grad-CAM of a frozen timm ViT classifier whose last-block features are upsampled before the map is formed.

The protocol of the JAFAR / FeatUp CAM evaluation: the channel weights come from the gradient of the class logit
with respect to the low-resolution token map (14x14 for ViT-B/16 at 224), the map itself is the weighted sum of
the *upsampled* token map, so the upsampler alone decides how sharp the explanation is::

    A = tokens entering the last block's attention (after its first LayerNorm), (B, C, h, w)
    alpha_c = mean_{h,w} d logit_c / d A                           (B, C)
    CAM = relu(sum_c alpha_c * upsampler(image, A, (H, W))_c)      (B, H, W)

For a class-token ViT the last block's *output* patch tokens never reach the logits (zero gradient), so the
tokens entering its attention are the last features that do, which is the usual Grad-CAM layer for ViTs.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmjafar.models.backbones.timm_weights import choose_weights, read_vit_state_dict
from mmjafar.models.layers.freezing import freeze
from mmjafar.utils.normalization import IMAGENET_MEAN, IMAGENET_STD
from .cam_metrics import cam_metrics_per_image


def build_vit_classifier(model_name: str = 'vit_base_patch16_224', pretrained: bool = True,
                         checkpoint: Optional[str] = None, random_init: bool = False,
                         model_kwargs: Optional[Dict] = None) -> nn.Module:
    """A frozen timm ViT *with* its classification head, weights chosen as for
    :class:`~mmjafar.models.backbones.TimmViT`.

    Order: ``checkpoint`` (local timm/mmengine file, head included); else timm's pretrained weights from the
    Hugging Face cache or hub when reachable; else random weights if ``random_init`` (warns); else an error that
    names these options.
    """
    import timm
    path, use_hub = choose_weights(model_name, pretrained, checkpoint, random_init)
    model = timm.create_model(model_name, pretrained=use_hub, **dict(model_kwargs or {}))
    if path is not None:
        from timm.models.vision_transformer import checkpoint_filter_fn
        state = checkpoint_filter_fn(read_vit_state_dict(path), model)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f'{model_name}: {path!r} does not fit the classifier (missing {missing[:4]}, unexpected '
                             f'{unexpected[:4]}); the CAM evaluation needs a checkpoint that includes the '
                             'classification head of this architecture')
    return freeze(model)


class UpsampledGradCAM(nn.Module):
    """Grad-CAM maps and the faithfulness statistics of :mod:`mmjafar.evaluation.cam_metrics`.

    Args:
        classifier: a timm ``VisionTransformer`` with its head (see :func:`build_vit_classifier`); frozen.
        upsampler: any upsampler called as ``upsampler(guidance, features, (H, W))`` (a registered
            :class:`~mmjafar.models.upsamplers.BaseUpsampler`); run without gradients.
        cam_size: output size ``(H, W)`` of the maps (default: the size of each input batch, 224x224 for
            ``vit_base_patch16_224``).

    Inputs ``x`` are batches normalised with the *classifier's* mean/std (timm's eval transform); the
    upsampler's guidance image is the same pixels ImageNet-normalised, computed here.
    """

    def __init__(self, classifier: nn.Module, upsampler: nn.Module,
                 cam_size: Optional[Tuple[int, int]] = None) -> None:
        super().__init__()
        if not hasattr(classifier, 'blocks') or not hasattr(classifier, 'patch_embed'):
            raise TypeError(f'UpsampledGradCAM needs a timm VisionTransformer classifier, got '
                            f'{type(classifier).__name__}')
        self.classifier = classifier.eval()
        self.upsampler = upsampler.eval()
        cfg = getattr(classifier, 'pretrained_cfg', {}) or {}
        self.cam_size = None if cam_size is None else tuple(cam_size)
        mean = torch.tensor(cfg.get('mean', IMAGENET_MEAN), dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(cfg.get('std', IMAGENET_STD), dtype=torch.float32).view(1, 3, 1, 1)
        inet_mean, inet_std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        # guidance = (x * std + mean - inet_mean) / inet_std
        self.register_buffer('_to_guidance_scale', std / inet_std, persistent=False)
        self.register_buffer('_to_guidance_shift', (mean - inet_mean) / inet_std, persistent=False)
        self.patch_size = int(classifier.patch_embed.patch_size[0])
        self.num_prefix_tokens = int(getattr(classifier, 'num_prefix_tokens', 1))

    def train(self, mode: bool = True):  # the evaluation model never trains
        return super().train(False)

    def guidance(self, x: torch.Tensor) -> torch.Tensor:
        """Classifier-normalised batch -> ImageNet-normalised guidance image, ``(B, 3, H, W)``."""
        return x * self._to_guidance_scale + self._to_guidance_shift

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W) -> (B, num_classes)``."""
        return self.classifier(x)

    def explain(self, x: torch.Tensor, classes: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, K)`` and CAMs ``(B, H, W)`` (>= 0) of ``classes`` ``(B,)`` for the batch ``x``."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f'UpsampledGradCAM: expected a (B, 3, H, W) batch, got {tuple(x.shape)}')
        if x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(f'UpsampledGradCAM: input size {tuple(x.shape[-2:])} is not a multiple of the patch size '
                             f'{self.patch_size}')
        grid = (x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size)
        captured = {}

        def hook(_module, _inputs, output):
            output = output.detach().requires_grad_(True)  # the frozen model builds no graph by itself
            captured['tokens'] = output
            return output

        handle = self.classifier.blocks[-1].norm1.register_forward_hook(hook)
        try:
            with torch.enable_grad():
                logits = self.classifier(x)
                score = logits.gather(1, classes.view(-1, 1).to(logits.device)).sum()
                tokens = captured['tokens']
                (grad, ) = torch.autograd.grad(score, tokens)
        finally:
            handle.remove()
        batch, _, channels = tokens.shape
        to_map = lambda t: t[:, self.num_prefix_tokens:].transpose(1, 2).reshape(batch, channels, *grid)  # noqa: E731
        low_res = to_map(tokens.detach())
        weights = to_map(grad).mean(dim=(2, 3))
        with torch.no_grad():
            high_res = self.upsampler(self.guidance(x), low_res, self.cam_size or tuple(x.shape[-2:]))
            cam = torch.einsum('bc,bchw->bhw', weights, high_res.float()).clamp_min(0)
        return logits.detach(), cam

    @torch.no_grad()
    def evaluate_batch(self, x: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Classify ``x``, explain the true class of the correctly classified images and score the maps.

        Returns ``correct`` ``(B,)`` bool and, for the correct images only (in batch order), the per-image values
        of every metric in :data:`~mmjafar.evaluation.cam_metrics.CAM_METRICS` as fractions, plus ``score`` and
        ``masked_score`` (softmax of the class on ``x`` and on ``x * 1[CAM > 0]``).
        """
        labels = labels.to(x.device)
        logits = self.logits(x)
        correct = logits.argmax(1) == labels
        out = {'correct': correct.cpu()}
        if not correct.any():
            return out
        x, labels = x[correct], labels[correct]
        logits, cam = self.explain(x, labels)
        mask = (cam > 0).unsqueeze(1).to(x.dtype)
        if mask.shape[-2:] != x.shape[-2:]:
            mask = F.interpolate(mask, size=x.shape[-2:], mode='nearest')
        masked_x = x * mask
        masked_logits, masked_cam = self.explain(masked_x, labels)
        full = logits.float().softmax(1).gather(1, labels.view(-1, 1)).squeeze(1)
        masked = masked_logits.float().softmax(1).gather(1, labels.view(-1, 1)).squeeze(1)
        metrics = cam_metrics_per_image(full.double(), masked.double(), cam.double(), masked_cam.double())
        out.update({k: v.cpu() for k, v in metrics.items()})
        out['score'], out['masked_score'] = full.cpu(), masked.cpu()
        return out


def split_batches(indices: Sequence[int], batch_size: int) -> list:
    """Consecutive batches of ``indices`` (the same for every world size, so per-image results are too)."""
    if batch_size <= 0:
        raise ValueError(f'batch_size must be positive, got {batch_size}')
    return [list(indices[i:i + batch_size]) for i in range(0, len(indices), batch_size)]
