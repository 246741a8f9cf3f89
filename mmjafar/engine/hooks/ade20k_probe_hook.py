"""Periodic ADE20K linear-probe evaluation of the upsampled features of a model being trained."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.dist import all_gather_object, all_reduce, get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

from mmjafar.datasets.ade20k import IGNORE_INDEX, ade20k_pairs, load_ade20k_pair
from mmjafar.evaluation.segmentation_metrics import miou_and_accuracy, segmentation_counts
from mmjafar.models.heads import PixelProbe
from mmjafar.models.layers.resize import resize_features
from mmjafar.models.upsamplers.base import BaseUpsampler
from mmjafar.registry import HOOKS
from mmjafar.utils.normalization import IMAGENET_MEAN, IMAGENET_STD


@HOOKS.register_module()
class ADE20KProbeHook(Hook):
    """Every ``interval`` iterations, fit a linear probe on upsampled features and log ADE20K val mIoU / accuracy.

    Works with any model holding a backbone (returning a tuple / GuidedFeatures of ``(B, C, h, w)`` maps) and an
    upsampler: ``UpsamplerPretrainer`` (``upsampler``), a segmentor with an upsampler neck (``neck``, also inside
    ``FeatureUpsamplerNeck``), or none (bilinear). Protocol: central square crops resized to ``img_size``, features
    of map ``feature_index`` upsampled to ``probe_size``; a BatchNorm + linear probe (the 1x1-conv probe, per
    pixel) is trained with Adam on ``pixels_per_image`` random labelled pixels of each of ``train_subset``
    training images, then every pixel of ``val_subset`` validation images is classified.

    Distributed runs give the same numbers as one process: images are split over ranks for feature extraction,
    the sampled training pixels (drawn from a per-image seed) are gathered so every rank fits the identical probe
    in the same order, and validation counts are integers summed with ``all_reduce``. Results are logged and put
    in the message hub as ``{prefix}/mIoU`` and ``{prefix}/aAcc``; :attr:`last_results` keeps the last ones.

    Args:
        data_root: ADEChallengeData2016 folder (``images/{training,validation}``, ``annotations/...``).
        interval: iterations between evaluations (0: only after training when ``at_end``).
        at_end: also evaluate after the last iteration.
        train_subset: first N training images used to fit the probe.
        val_subset: first N validation images evaluated (None: all 2000).
        img_size: crop side fed to the backbone (a multiple of its patch size).
        probe_size: side of the upsampled features and labels (None: ``img_size``).
        pixels_per_image: labelled pixels sampled per training image.
        epochs, batch_size, lr: probe optimisation (Adam over the sampled pixels).
        num_classes: 150 for ADE20K (label 0 "other" is ignored, classes shift down by one).
        feature_index: backbone output map probed.
        backbone_key: attribute of the model holding the backbone.
        upsampler_key: attribute holding the upsampler (None: 'upsampler', then 'neck', else bilinear).
        seed: seed of the pixel sampling, probe initialisation and shuffling.
        prefix: name prefix of the logged values.
    """

    priority = 'LOW'

    def __init__(self, data_root: str, interval: int = 5000, at_end: bool = True, train_subset: int = 200,
                 val_subset: Optional[int] = 200, img_size: int = 448, probe_size: Optional[int] = None,
                 pixels_per_image: int = 1024, epochs: int = 10, batch_size: int = 4096, lr: float = 1e-3,
                 num_classes: int = 150, feature_index: int = -1, backbone_key: str = 'backbone',
                 upsampler_key: Optional[str] = None, seed: int = 0, prefix: str = 'ade20k_probe') -> None:
        if interval < 0 or train_subset <= 0 or pixels_per_image <= 0 or epochs <= 0 or batch_size <= 0:
            raise ValueError('ADE20KProbeHook: interval must be >= 0 and train_subset, pixels_per_image, epochs, '
                             'batch_size > 0')
        self.data_root = data_root
        self.interval, self.at_end = interval, at_end
        self.train_subset, self.val_subset = train_subset, val_subset
        self.img_size = img_size
        self.probe_size = probe_size or img_size
        self.pixels_per_image, self.epochs, self.batch_size, self.lr = pixels_per_image, epochs, batch_size, lr
        self.num_classes = num_classes
        self.feature_index = feature_index
        self.backbone_key, self.upsampler_key = backbone_key, upsampler_key
        self.seed = seed
        self.prefix = prefix
        self.last_results: Dict[str, float] = {}
        self._mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    # ------------------------------------------------------------------ hook stages
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.interval and self.every_n_train_iters(runner, self.interval) and not (
                self.at_end and self.is_last_train_iter(runner)):
            self._run(runner)

    def after_train(self, runner) -> None:
        if self.at_end:
            self._run(runner)

    def _run(self, runner) -> None:
        results = self.evaluate(runner.model)
        runner.logger.info(f'{self.prefix} (iter {runner.iter}): mIoU {results["mIoU"]:.2f}, '
                           f'aAcc {results["aAcc"]:.2f} ({self.train_subset} train / {results["val_images"]} '
                           f'val images at {self.probe_size}px)')
        for key in ('mIoU', 'aAcc'):
            runner.message_hub.update_scalar(f'{self.prefix}/{key}', results[key])

    # ------------------------------------------------------------------ evaluation
    def modules(self, model: nn.Module) -> Tuple[nn.Module, Optional[nn.Module]]:
        """The backbone and the upsampler (a BaseUpsampler, or None for bilinear) of ``model``."""
        model = model.module if is_model_wrapper(model) else model
        backbone = getattr(model, self.backbone_key, None)
        if backbone is None:
            raise AttributeError(f'ADE20KProbeHook: {type(model).__name__} has no {self.backbone_key!r}; set '
                                 'backbone_key to the attribute holding the backbone')
        keys = (self.upsampler_key, ) if self.upsampler_key else ('upsampler', 'neck')
        upsampler = next((getattr(model, k) for k in keys if getattr(model, k, None) is not None), None)
        if upsampler is not None and not isinstance(upsampler, BaseUpsampler):
            upsampler = getattr(upsampler, 'upsampler', None)  # FeatureUpsamplerNeck
            if not isinstance(upsampler, BaseUpsampler):
                raise TypeError(f'ADE20KProbeHook: {keys} of {type(model).__name__} holds no BaseUpsampler')
        return backbone, upsampler

    def load(self, image_path: str, label_path: str, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        """Normalised ``(1, 3, img_size, img_size)`` image and ``(probe_size, probe_size)`` label (255 = ignore)."""
        image, label = load_ade20k_pair(image_path, label_path, self.img_size, self.probe_size)
        return ((image.unsqueeze(0) - self._mean) / self._std).to(device), label.to(device)

    @torch.no_grad()
    def features(self, backbone: nn.Module, upsampler: Optional[nn.Module], image: torch.Tensor) -> torch.Tensor:
        """``(C, probe_size, probe_size)`` upsampled features of one image."""
        low = backbone(image)[self.feature_index]
        size = (self.probe_size, self.probe_size)
        if upsampler is None:
            return resize_features(low, size)[0].float()
        return upsampler(image, low, size)[0].float()

    def evaluate(self, model: nn.Module) -> Dict[str, float]:
        """Fit the probe and return ``{'mIoU', 'aAcc', 'val_images'}`` (identical on every rank)."""
        backbone, upsampler = self.modules(model)
        device = next(p for p in model.parameters()).device
        rank, world = get_dist_info()
        was_training = model.training
        model.eval()
        try:
            train = ade20k_pairs(self.data_root, 'training', self.train_subset)
            val = ade20k_pairs(self.data_root, 'validation', self.val_subset)
            samples = []
            for index in range(rank, len(train), world):
                image, label = self.load(*train[index], device)
                feats = self.features(backbone, upsampler, image)
                pixels = self._sample_pixels(label.flatten(), index)
                samples.append((index, feats.flatten(1)[:, pixels].t().cpu(), label.flatten()[pixels].cpu()))
            gathered = sorted((s for part in all_gather_object(samples) for s in part), key=lambda s: s[0])
            x = torch.cat([s[1] for s in gathered]).to(device)
            y = torch.cat([s[2] for s in gathered]).to(device)
            probe = self.fit_probe(x, y, device)
            counts = torch.zeros(3, self.num_classes, dtype=torch.long, device=device)
            for index in range(rank, len(val), world):
                image, label = self.load(*val[index], device)
                pred = probe.predict_map(self.features(backbone, upsampler, image))
                counts += segmentation_counts(pred, label, self.num_classes)
            if world > 1:
                all_reduce(counts)
        finally:
            model.train(was_training)
        results = miou_and_accuracy(counts.cpu())
        results['val_images'] = len(val)
        self.last_results = results
        return results

    def _sample_pixels(self, label: torch.Tensor, index: int) -> torch.Tensor:
        valid = torch.nonzero(label != IGNORE_INDEX).flatten().cpu()
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        chosen = valid[torch.randperm(len(valid), generator=gen)[:self.pixels_per_image]]
        return chosen.sort().values.to(label.device)

    def fit_probe(self, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> nn.Module:
        """Train the BatchNorm + linear probe on pixel features ``x (N, C)`` and labels ``y (N,)``."""
        if len(x) == 0:
            raise RuntimeError('ADE20KProbeHook: the training subset has no labelled pixel')
        gen = torch.Generator().manual_seed(self.seed)
        probe = PixelProbe(x.shape[1], self.num_classes)
        with torch.no_grad():
            probe.fc.weight.copy_(torch.randn(probe.fc.weight.shape, generator=gen) * 0.01)
            probe.fc.bias.zero_()
        probe = probe.to(device).train()
        optimizer = torch.optim.Adam(probe.parameters(), lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.epochs):
                order = torch.randperm(len(x), generator=gen).to(device)
                for start in range(0, len(x), self.batch_size):
                    batch = order[start:start + self.batch_size]
                    if len(batch) < 2:  # BatchNorm needs two samples
                        continue
                    loss = F.cross_entropy(probe(x[batch]), y[batch])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
        return probe.eval()
