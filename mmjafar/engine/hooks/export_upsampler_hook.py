"""Export the trained upsampler as a plain state dict (official JAFAR key layout) plus a short model card."""
import io
import json
import os.path as osp
from typing import Optional

import torch
from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmjafar.registry import HOOKS
from ..fileio import atomic_write_bytes


@HOOKS.register_module()
class ExportUpsamplerHook(Hook):
    """After training, write ``<work_dir>/<filename>`` = ``upsampler.state_dict()`` and ``<stem>.md``.

    The ``.pth`` holds the bare upsampler weights with the official key names: it loads with
    ``init_cfg=dict(type='Pretrained', checkpoint=path)`` into mmjafar's upsampler and with
    ``load_state_dict`` into the official implementation. The card records the backbone, feature dimension,
    steps and final loss. Both files are written atomically, on rank 0 only.

    Args:
        filename: file name of the exported weights; None: ``<upsampler>_<backbone>.pth``.
        loss_window: the final loss is the mean of the last ``loss_window`` logged iterations.
    """

    priority = 'LOW'

    def __init__(self, filename: Optional[str] = None, loss_window: int = 50) -> None:
        self.filename = filename
        self.loss_window = loss_window

    @master_only
    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        upsampler, backbone = model.upsampler, model.backbone
        backbone_name = getattr(backbone, 'model_name', type(backbone).__name__)
        filename = self.filename or f'{type(upsampler).__name__.lower()}_{backbone_name}.pth'
        path = osp.join(runner.work_dir, filename)
        state = {k: v.detach().cpu().clone() for k, v in upsampler.state_dict().items()}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(buffer.getvalue(), path)

        scalars = runner.message_hub.log_scalars
        final_loss = float(scalars['train/loss'].mean(self.loss_window)) if 'train/loss' in scalars else None
        card = dict(upsampler=type(upsampler).__name__, backbone=backbone_name,
                    backbone_weights=str(getattr(backbone, 'weights_source', 'unknown')),
                    feature_dim=int(backbone.embed_dim), patch_size=int(backbone.patch_size), steps=int(runner.iter),
                    final_loss=final_loss, loss_window=self.loss_window,
                    img_size=getattr(runner.cfg, 'img_size', None), weights=filename)
        window = min(self.loss_window, int(runner.iter))
        loss_txt = 'n/a' if final_loss is None else f'{final_loss:.4f} (mean of the last {window} iterations)'
        text = '\n'.join([
            f'# {card["upsampler"]} for {backbone_name}', '',
            f'- backbone: `{backbone_name}` (weights: {card["backbone_weights"]})',
            f'- feature dim: {card["feature_dim"]}, patch size: {card["patch_size"]}',
            f'- training steps: {card["steps"]}', f'- final loss: {loss_txt}',
            f'- weights: `{filename}` (plain state dict, official JAFAR key layout)', '',
            'Use it in a config:', '', '```python',
            f"neck=dict(type='{card['upsampler']}', v_dim={card['feature_dim']},",
            f"          init_cfg=dict(type='Pretrained', checkpoint='{path}'))", '```', '',
            '```json', json.dumps(card, indent=1), '```', ''])
        atomic_write_bytes(text.encode(), osp.splitext(path)[0] + '.md')
        runner.logger.info(f'exported the trained {card["upsampler"]} to {path} (model card: '
                           f'{osp.splitext(path)[0]}.md)')
