"""End-of-training held-out check of a pretrained upsampler: error table and PCA figure."""
import json
import os.path as osp
from typing import Optional, Sequence

import torch
from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmjafar.registry import DATASETS, HOOKS
from ..fileio import atomic_write_bytes
from ..heldout import format_errors_table, heldout_errors, save_pca_figure


@HOOKS.register_module()
class HeldOutUpsamplingHook(Hook):
    """After training (rank 0), compare the upsampler with bilinear and nearest on held-out images.

    Prints :func:`~mmjafar.engine.heldout.format_errors_table` (``1 - cos`` and L2 to the backbone's true
    high-res features at each downsampling factor), logs the numbers as scalars (tensorboard when enabled),
    writes them to ``<work_dir>/heldout_errors.json`` and, if ``pca_size`` is set, a PNG of the PCA of the
    low-res, bilinear and upsampled features of the first held-out image at ``pca_size``.

    Args:
        dataset: config of the held-out image dataset (samples ``dict(inputs=uint8 (3, S, S))``).
        scales: downsampling factors of the table.
        pca_size: side of the PCA figure's image (None: no figure); a multiple of the patch size.
        pca_index: which held-out image the figure shows.
        batch_size: images per forward pass.
    """

    priority = 'LOW'

    def __init__(self, dataset: dict, scales: Sequence[int] = (2, 4), pca_size: Optional[int] = 448,
                 pca_index: int = 0, batch_size: int = 4) -> None:
        self.dataset_cfg = dataset
        self.scales = tuple(scales)
        self.pca_size = pca_size
        self.pca_index = pca_index
        self.batch_size = batch_size

    @staticmethod
    def random_backbone_notice(model) -> Optional[str]:
        """A loud banner when the backbone runs on random weights (the numbers then only show that the tool
        learns), else None."""
        if getattr(model.backbone, 'weights_source', None) != 'random':
            return None
        name = getattr(model.backbone, 'model_name', type(model.backbone).__name__)
        bar = '!' * 100
        return (f'\n{bar}\n!!  RANDOM-INIT BACKBONE: no local weights for {name} (and the hub is unreachable).\n'
                '!!  The upsampler learns to recover the features of a RANDOM ViT: the table shows that training\n'
                '!!  works, not the quality of a pretrained model. Put the weights in the Hugging Face cache or set\n'
                f'!!  model.backbone.checkpoint=/path/to/weights to train on real features.\n{bar}')

    @master_only
    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        notice = self.random_backbone_notice(model)
        if notice:
            runner.logger.warning(notice)

    def _normalised(self, model, dataset) -> torch.Tensor:
        data = model.data_preprocessor(dict(inputs=[dataset[i]['inputs'] for i in range(len(dataset))]), False)
        return data['inputs']

    @master_only
    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        dataset = DATASETS.build(self.dataset_cfg)
        errors = heldout_errors(model, self._normalised(model, dataset), self.scales, self.batch_size)
        table = format_errors_table(errors, type(model.upsampler).__name__)
        notice = self.random_backbone_notice(model) or ''
        runner.logger.info(f'{notice}\nheld-out feature errors ({len(dataset)} images, lower is better):\n{table}')
        scalars = {f'heldout/{m}_{metric}_{k}x': v for m, per in errors.items() for k, d in per.items()
                   for metric, v in d.items()}
        runner.visualizer.add_scalars(scalars, step=runner.iter)
        atomic_write_bytes(json.dumps(dict(errors=errors, table=table), indent=1).encode(),
                           osp.join(runner.work_dir, 'heldout_errors.json'))
        if self.pca_size is not None:
            cfg = dict(self.dataset_cfg, img_size=self.pca_size)
            cfg.pop('random_crop_scale', None)
            pca_set = DATASETS.build(cfg)
            image = model.data_preprocessor(dict(inputs=[pca_set[self.pca_index]['inputs']]), False)['inputs'][0]
            path = osp.join(runner.work_dir, 'heldout_pca.png')
            save_pca_figure(model, image, path)
            runner.logger.info(f'PCA of low-res / bilinear / {type(model.upsampler).__name__} features: {path}')
