"""``PackBEVInputs``: the last pipeline step, producing the packed sample of ``projects.bev.bev.structures``."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement, PixelData

from mmjafar.registry import TRANSFORMS
from ..structures import GT_KEYS
from .image_transforms import stack_images

DEFAULT_META_KEYS = ('sample_token', 'sample_idx', 'scene_name', 'timestamp', 'cam2img', 'cam2ego', 'ego2global',
                     'bev_aug', 'img_shape', 'img_paths', 'ori_shapes', 'cam_names')


@TRANSFORMS.register_module()
class PackBEVInputs(BaseTransform):
    """Pack to ``dict(inputs=dict(imgs=uint8 (N, 3, H, W)), data_samples=BaseDataElement)``.

    The data sample's metainfo holds ``meta_keys`` present in the results (``cam2img``, ``cam2ego``,
    ``ego2global``, ``bev_aug`` as float32 arrays; ``bev_aug`` defaults to the identity); ``gt_bev`` is a
    ``PixelData`` of the rasterised targets when ``RasterizeBEVTargets`` ran (absent for pure inference).

    Args:
        meta_keys: result keys copied into the metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        if 'imgs' not in results:
            raise KeyError('PackBEVInputs: no images in the results; put LoadMultiViewImages first')
        imgs = torch.from_numpy(stack_images(results['imgs']))
        results.setdefault('bev_aug', np.eye(4, dtype=np.float32))
        if 'img_shape' not in results:
            results['img_shape'] = tuple(imgs.shape[-2:])
        meta = {}
        for key in self.meta_keys:
            if key in results:
                value = results[key]
                if key in ('cam2img', 'cam2ego', 'ego2global', 'bev_aug'):
                    value = np.asarray(value, dtype=np.float32)
                meta[key] = value
        sample = BaseDataElement(metainfo=meta)
        if 'gt_bev' in results:
            gt = results['gt_bev']
            missing = [k for k in GT_KEYS if k not in gt]
            if missing:
                raise KeyError(f'PackBEVInputs: gt_bev lacks {missing}; use RasterizeBEVTargets')
            sample.gt_bev = PixelData(**{k: torch.from_numpy(np.ascontiguousarray(gt[k])) for k in GT_KEYS})
        return dict(inputs=dict(imgs=imgs), data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
