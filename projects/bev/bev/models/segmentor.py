"""``BEVSegmentor``: the base of the three BEV vehicle-segmentation models (design brief §2, §4).

::

    inputs['imgs'] (B, N, 3, H, W) ── image branch (frozen ViT -> upsampler -> neck) ──> (B, N, C, h, w)
        ── bev_forward (view transform [-> bev_encoder] -> head) ──> dict(seg, centerness, offset) on the grid
        ── 'loss': BEVLoss vs gt_bev | 'predict': sigmoid(seg) -> data_sample.pred_bev | 'tensor': seg logits

Subclasses (``SimpleBEV``, ``PointBeV``, ``BEVFormerSeg``) override :meth:`bev_forward` (and PointBeV ``loss``);
the base class also runs any registered ``view_transform`` module called as ``view_transform(img_feats, inputs)
-> (B, C', R, C)`` followed by the optional ``bev_encoder`` and the head.
"""
from typing import Dict, List, Optional

import torch
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from torch import nn

from mmjafar.registry import MODELS
from ..geometry import BEVGrid
from ..structures import stack_gt
from .image_branch import BEVImageBranch, ConfigOrModule, build_module

INPUT_KEYS = ('imgs', 'cam2img', 'cam2ego', 'bev_aug')


@MODELS.register_module()
class BEVSegmentor(BaseModel):
    """Multi-camera BEV segmentor with a pluggable feature upsampler.

    Args:
        backbone: frozen ViT config (``TimmViT``).
        neck: image neck config (``BEVImageNeck``), its ``out_channels`` is the view transform's input width.
        head: BEV head config (``BEVHead``); must output ``seg`` logits on the grid.
        upsampler: registered upsampler config, or None (Low-Res: the ViT grid).
        target_stride: output stride of the upsampler relative to the input image.
        view_transform: config or module called as ``view_transform(img_feats, inputs)``; configs get
            ``grid`` filled in when they have no ``grid`` key. Subclasses may instead override ``bev_forward``.
        bev_encoder: optional BEV network between the view transform and the head (e.g. ``ResNetUNet``).
        grid: ``BEVGrid`` config dict (must equal the dataset's ``grid``); None = 200×200×8 at 0.5 m.
        loss: loss config; None = ``dict(type='BEVLoss')``. Its learned weights are part of the model.
        data_preprocessor: data preprocessor config; None = ``dict(type='BEVDataPreprocessor')``.
        init_cfg: mmengine init config.

    Subclasses add their own arguments and pass these through as ``**kwargs`` (a misspelt one still fails with a
    ``TypeError`` naming it); they give their own defaults for ``head``, ``view_transform`` or ``bev_encoder``
    with ``kwargs.setdefault``, so an explicit ``None`` stays ``None``.
    """

    def __init__(self, backbone: ConfigOrModule, neck: ConfigOrModule, head: ConfigOrModule,
                 upsampler: ConfigOrModule = None, target_stride: float = 8,
                 view_transform: ConfigOrModule = None, bev_encoder: ConfigOrModule = None,
                 grid: Optional[dict] = None, loss: ConfigOrModule = None, data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        data_preprocessor = dict(type='BEVDataPreprocessor') if data_preprocessor is None else data_preprocessor
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.grid = BEVGrid.build(grid)
        self.img_branch = BEVImageBranch(backbone=backbone, neck=neck, upsampler=upsampler,
                                         target_stride=target_stride)
        if isinstance(view_transform, dict) and 'grid' not in view_transform:
            view_transform = dict(view_transform, grid=self.grid_cfg)
        self.view_transform = build_module(view_transform)
        self.bev_encoder = build_module(bev_encoder)
        self.head = build_module(head)
        self.loss_module = build_module(dict(type='BEVLoss') if loss is None else loss)

    # ------------------------------------------------------------------ helpers
    @property
    def grid_cfg(self) -> dict:
        """The grid as a config dict (what sub-modules take)."""
        g = self.grid
        return dict(x_range=g.x_range, y_range=g.y_range, resolution=g.resolution, z_centers=g.z_centers)

    @property
    def backbone(self) -> nn.Module:
        return self.img_branch.backbone

    @property
    def upsampler(self) -> Optional[nn.Module]:
        return self.img_branch.upsampler

    @property
    def neck(self) -> nn.Module:
        return self.img_branch.neck

    def check_view_transform(self, cls: type, channels_attr: str) -> None:
        """The view transform is a ``cls`` on the model's grid whose input width (its ``channels_attr``) is the
        neck's output width; one-line errors otherwise."""
        name, transform = type(self).__name__, self.view_transform
        if not isinstance(transform, cls):
            raise TypeError(f'{name}: view_transform must be a {cls.__name__}, got {type(transform).__name__}')
        if transform.grid != self.grid:
            raise ValueError(f'{name}: the view transform grid {transform.grid} differs from the model grid '
                             f'{self.grid}; set only model.grid (leave "grid" out of the view_transform config)')
        width = getattr(transform, channels_attr)
        if width != self.img_branch.out_channels:
            raise ValueError(f'{name}: view_transform.{channels_attr}={width} must equal the neck\'s '
                             f'out_channels={self.img_branch.out_channels}; make them equal')

    @staticmethod
    def check_inputs(inputs: dict) -> None:
        missing = [k for k in INPUT_KEYS if k not in inputs]
        if missing:
            raise KeyError(f'{INPUT_KEYS} expected in inputs, missing {missing}; run the batch through '
                           'BEVDataPreprocessor (model.data_preprocessor) first')

    # ------------------------------------------------------------------ forward pieces
    def extract_img_feats(self, imgs: torch.Tensor) -> torch.Tensor:
        """``(B, N, 3, H, W)`` normalised images -> ``(B, N, C_neck, h, w)``."""
        return self.img_branch(imgs)

    def bev_forward(self, img_feats: torch.Tensor, inputs: dict) -> Dict[str, torch.Tensor]:
        """Image features -> dict of BEV maps (``seg`` (B, 1, R, C) logits, ``centerness``, ``offset``)."""
        if self.view_transform is None:
            raise NotImplementedError(f'{type(self).__name__}: no view_transform configured and bev_forward is not '
                                      'overridden; use SimpleBEV / PointBeV / BEVFormerSeg or set view_transform')
        bev = self.view_transform(img_feats, inputs)
        if self.bev_encoder is not None:
            bev = self.bev_encoder(bev)
        return self.head(bev)

    def forward_bev(self, inputs: dict) -> Dict[str, torch.Tensor]:
        """Images and geometry (``BEVDataPreprocessor``'s ``inputs``) -> BEV predictions."""
        self.check_inputs(inputs)
        return self.bev_forward(self.extract_img_feats(inputs['imgs']), inputs)

    def loss_by_preds(self, preds: Dict[str, torch.Tensor], data_samples: List,
                      pred_mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """``BEVLoss`` of predictions against the batch's ``gt_bev``."""
        gt = stack_gt(data_samples, device=preds['seg'].device)
        return self.loss_module(preds, gt, pred_mask=pred_mask)

    # ------------------------------------------------------------------ modes
    def forward(self, inputs: dict, data_samples: Optional[List] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f'{type(self).__name__}: mode must be "loss", "predict" or "tensor", got {mode!r}')

    def loss(self, inputs: dict, data_samples: List) -> Dict[str, torch.Tensor]:
        if not data_samples:
            raise ValueError(f'{type(self).__name__}.loss needs data_samples with gt_bev')
        return self.loss_by_preds(self.forward_bev(inputs), data_samples)

    def predict(self, inputs: dict, data_samples: Optional[List] = None) -> List:
        seg = self.forward_bev(inputs)['seg']
        return self.add_pred_to_samples(seg, data_samples)

    @staticmethod
    def add_pred_to_samples(seg_logits: torch.Tensor, data_samples: Optional[List]) -> List:
        """Write ``pred_bev = PixelData(seg=sigmoid(logits) (1, R, C))`` into each data sample."""
        from mmengine.structures import BaseDataElement
        probs = seg_logits.detach().float().sigmoid()
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(probs.shape[0])]
        if len(data_samples) != probs.shape[0]:
            raise ValueError(f'{len(data_samples)} data samples for a batch of {probs.shape[0]} predictions')
        for sample, prob in zip(data_samples, probs):
            sample.pred_bev = PixelData(seg=prob)
        return data_samples

    def _forward(self, inputs: dict, data_samples: Optional[List] = None) -> torch.Tensor:
        """'tensor' mode: segmentation logits ``(B, 1, R, C)``."""
        return self.forward_bev(inputs)['seg']
