"""The data contract between the BEV pipeline, the data preprocessor, the models and the metric.

After ``PackBEVInputs`` one sample is ``dict(inputs=dict(imgs=uint8 (N, 3, H, W)), data_samples=BaseDataElement)``:

* data sample metainfo: ``sample_token`` (str), ``cam2img`` (N, 3, 3) intrinsics of the augmented images,
  ``cam2ego`` (N, 4, 4), ``ego2global`` (4, 4), ``bev_aug`` (4, 4), ``img_shape`` (H, W), ``img_paths``;
* ``data_sample.gt_bev``: a ``PixelData`` over the BEV grid with ``seg`` (1, R, C) uint8 0/1, ``valid`` (1, R, C)
  bool, ``centerness`` (1, R, C) float32, ``offset`` (2, R, C) float32 (255 = ignore),
  ``valid_centerness`` (1, R, C) bool.

``BEVDataPreprocessor`` returns ``dict(inputs=dict(imgs=(B, N, 3, H, W) float normalised, cam2img=(B, N, 3, 3),
cam2ego=(B, N, 4, 4), bev_aug=(B, 4, 4)), data_samples=[...])``: everything a model's ``tensor`` mode needs is in
``inputs``. Models write ``data_sample.pred_bev = PixelData(seg=(1, R, C) probabilities)``; the metric reads
``pred_bev.seg``, ``gt_bev.seg`` and ``gt_bev.valid``.
"""
from typing import Dict, Sequence

import numpy as np
import torch

GEOMETRY_KEYS = ('cam2img', 'cam2ego', 'bev_aug')
GT_KEYS = ('seg', 'valid', 'centerness', 'offset', 'valid_centerness')
IGNORE_OFFSET = 255.0


def _as_tensor(value, device, dtype) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    return torch.as_tensor(value).to(device=device, dtype=dtype)


def stack_geometry(data_samples: Sequence, device=None, dtype=torch.float32) -> Dict[str, torch.Tensor]:
    """Stack the camera matrices and BEV augmentation of a batch: ``cam2img`` (B, N, 3, 3), ``cam2ego``
    (B, N, 4, 4) and ``bev_aug`` (B, 4, 4) (identity when a sample has none)."""
    out = {}
    for key in GEOMETRY_KEYS:
        mats = []
        for sample in data_samples:
            value = sample.metainfo.get(key)
            if value is None:
                if key != 'bev_aug':
                    raise KeyError(f'BEV data sample {sample.metainfo.get("sample_token")!r} has no {key!r}; '
                                   'build the pipeline with PackBEVInputs')
                value = np.eye(4, dtype=np.float32)
            mats.append(_as_tensor(value, device, dtype))
        out[key] = torch.stack(mats)
    return out


def stack_gt(data_samples: Sequence, device=None) -> Dict[str, torch.Tensor]:
    """Stack ``gt_bev`` of a batch into ``(B, C, R, C)`` tensors: float ``seg``/``centerness``/``offset`` and bool
    ``valid``/``valid_centerness``."""
    out = {}
    for key in GT_KEYS:
        maps = []
        for sample in data_samples:
            if 'gt_bev' not in sample or key not in sample.gt_bev:
                raise KeyError(f'BEV data sample {sample.metainfo.get("sample_token")!r} has no gt_bev.{key}; '
                               'add RasterizeBEVTargets to the pipeline')
            maps.append(torch.as_tensor(sample.gt_bev.get(key)))
        dtype = torch.bool if key.startswith('valid') else torch.float32
        out[key] = torch.stack(maps).to(device=device, dtype=dtype)
    return out
