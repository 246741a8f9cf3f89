"""``BEVDataPreprocessor``: batch the packed BEV samples for the models (contract in ``structures.py``)."""
from typing import Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor

from mmjafar.registry import MODELS
from mmjafar.utils.normalization import IMAGENET_MEAN_255, IMAGENET_STD_255
from ..structures import GEOMETRY_KEYS, stack_geometry


@MODELS.register_module()
class BEVDataPreprocessor(BaseDataPreprocessor):
    """Move a batch to the model's device, stack the images to ``(B, N, 3, H, W)`` float, normalise them with the
    ImageNet mean/std (DINOv2 uses the same) and stack the camera geometry into ``inputs``.

    Accepts ``pseudo_collate`` output (``inputs['imgs']`` a list of ``(N, 3, H, W)`` uint8 tensors,
    ``data_samples`` a list) and already-stacked batches (``inputs['imgs']`` ``(B, N, 3, H, W)``). Geometry
    already present in ``inputs`` (``cam2img``, ``cam2ego``, ``bev_aug``) is kept; otherwise it is read from the
    data samples' metainfo (``structures.stack_geometry``).

    Args:
        mean, std: per-channel RGB statistics in 0..255 units.
        non_blocking: passed to ``Tensor.to`` when moving to the device.
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN_255, std: Sequence[float] = IMAGENET_STD_255,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f'BEVDataPreprocessor: mean/std need 3 values with std > 0, got {mean}, {std}')
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 1, 3, 1, 1), False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 1, 3, 1, 1), False)

    @staticmethod
    def _stack_imgs(imgs: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        if isinstance(imgs, torch.Tensor):
            if imgs.dim() != 5:
                raise ValueError(f'BEVDataPreprocessor: stacked images must be (B, N, 3, H, W), got '
                                 f'{tuple(imgs.shape)}; pass a list of (N, 3, H, W) tensors per sample')
            return imgs
        shapes = {tuple(im.shape) for im in imgs}
        if len(shapes) != 1 or len(next(iter(shapes))) != 4:
            raise ValueError(f'BEVDataPreprocessor: every sample needs (N, 3, H, W) images of one size, got {shapes}')
        return torch.stack([torch.as_tensor(im) for im in imgs])

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = dict(data['inputs'])
        data_samples: Optional[list] = data.get('data_samples')
        if 'imgs' not in inputs:
            raise KeyError('BEVDataPreprocessor: inputs have no "imgs"; build the pipeline with PackBEVInputs')
        imgs = self._stack_imgs(inputs['imgs'])
        if imgs.shape[2] != 3:
            raise ValueError(f'BEVDataPreprocessor: images must have 3 channels in dim 2, got {tuple(imgs.shape)}')
        imgs = imgs.to(self.device, non_blocking=self._non_blocking).float()
        inputs['imgs'] = (imgs - self.mean) / self.std
        missing = [k for k in GEOMETRY_KEYS if k not in inputs]
        if missing:
            if not data_samples:
                raise KeyError(f'BEVDataPreprocessor: no data samples to read {missing} from; pass them in inputs')
            geometry = stack_geometry(data_samples, device=self.device)
            inputs.update({k: geometry[k] for k in missing})
        for key in GEOMETRY_KEYS:
            inputs[key] = torch.as_tensor(inputs[key]).to(self.device, torch.float32)
        if data_samples is not None:
            data_samples = self.cast_data(list(data_samples))
        return dict(inputs=inputs, data_samples=data_samples)
