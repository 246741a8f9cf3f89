"""Zero-shot open-vocabulary segmentation as an mmseg segmentor, evaluated by mmseg's datasets and IoUMetric.

``OpenVocabSegmentor`` = :class:`~mmjafar.evaluation.openvocab.DenseCLIP` features -> any registered upsampler
(to the network input size) -> per-pixel visual projection -> cosine with class text embeddings -> argmax.
:func:`openvocab_test_cfg` builds the mmengine ``Runner`` config (test loop, mmseg dataset, ``IoUMetric``) for VOC,
ADE20K and Cityscapes; under a distributed launcher the ``DefaultSampler`` splits images over ranks and the
metric gathers per-image counts in dataset order, so results equal a single-process run.
"""
import copy
from typing import Dict, List, Optional, Sequence

import torch
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.utils import OptSampleList, SampleList

from mmjafar.models.upsamplers.builder import build_frozen_upsampler
from mmjafar.registry import MODELS
from mmjafar.utils.normalization import IMAGENET_MEAN_255, IMAGENET_STD_255
from .openvocab import DEFAULT_TEMPLATES, DenseCLIP, clip_text_embeddings, cosine_logits

#: mmseg dataset type, folders and resize scale of each benchmark (whole-image inference, shorter side 448).
DATASETS = {
    'voc': dict(type='PascalVOCDataset', data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                ann_file='ImageSets/Segmentation/val.txt', reduce_zero_label=False, scale=(2048, 448)),
    'ade20k': dict(type='ADE20KDataset',
                   data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
                   reduce_zero_label=True, scale=(2048, 448)),
    'cityscapes': dict(type='CityscapesDataset', data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
                       reduce_zero_label=False, scale=(2048, 448)),
}


@MODELS.register_module()
class OpenVocabSegmentor(BaseSegmentor):
    """Training-free MaskCLIP-style segmentor whose dense CLIP features go through an upsampler.

    Args:
        class_names: the dataset's classes (prompted as words, see :func:`~mmjafar.evaluation.openvocab.prompt_names`).
        visual: arguments of :class:`~mmjafar.evaluation.openvocab.DenseCLIP`.
        upsampler: registry config of the upsampler (``in_channels``/``v_dim`` filled from the CLIP width when
            missing), e.g. ``dict(type='JAFAR')``; None: bilinear.
        upsampler_checkpoint: weights of the upsampler (official layouts accepted).
        text_embeddings: a ``.pt`` file with precomputed unit class embeddings ``(K, D)``; when None they are computed
            with open_clip (``text_model``, ``text_pretrained``, ``templates``).
        data_preprocessor: mmseg ``SegDataPreProcessor`` config (default: ImageNet statistics, RGB, padding to the
            patch size).
        init_cfg: mmengine init config.
    """

    def __init__(self, class_names: Sequence[str], visual: Optional[Dict] = None, upsampler: Optional[Dict] = None,
                 upsampler_checkpoint: Optional[str] = None, text_embeddings: Optional[str] = None,
                 text_model: str = 'ViT-B-16', text_pretrained: Optional[str] = 'openai',
                 templates: Sequence[str] = DEFAULT_TEMPLATES, data_preprocessor: Optional[Dict] = None,
                 init_cfg=None) -> None:
        clip = DenseCLIP(**dict(visual or {}))
        if data_preprocessor is None:
            data_preprocessor = dict(type='SegDataPreProcessor', mean=list(IMAGENET_MEAN_255),
                                     std=list(IMAGENET_STD_255), bgr_to_rgb=True, pad_val=0,
                                     seg_pad_val=255, size_divisor=clip.patch_size)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.clip = clip
        self.align_corners = False  # read by mmseg's postprocess_result when resizing logits to the image
        self.clip.vit.is_init = True
        self.class_names = tuple(class_names)
        self.upsampler = build_frozen_upsampler(upsampler or dict(type='Bilinear'), self.clip.embed_dim,
                                                upsampler_checkpoint)
        if text_embeddings is not None:
            emb = torch.load(text_embeddings, map_location='cpu', weights_only=True)
        else:
            emb = clip_text_embeddings(self.class_names, templates, text_model, text_pretrained)
        if emb.shape != (len(self.class_names), self.clip.out_dim):
            raise ValueError(f'OpenVocabSegmentor: text embeddings have shape {tuple(emb.shape)}, expected '
                             f'({len(self.class_names)} classes, {self.clip.out_dim} dims)')
        self.register_buffer('text_embeddings', emb.float(), persistent=False)

    def train(self, mode: bool = True):  # zero-shot: always in eval mode
        return super().train(False)

    def extract_feat(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        """Dense CLIP features ``[(B, C, H/p, W/p)]``."""
        return [self.clip(inputs)]

    def encode_decode(self, inputs: torch.Tensor, batch_img_metas: List[dict]) -> torch.Tensor:
        """Cosine logits ``(B, K, H, W)`` at the (padded) input size (``batch_img_metas`` is not needed)."""
        features = self.extract_feat(inputs)[0]
        with torch.no_grad():
            high_res = self.upsampler(inputs, features, tuple(inputs.shape[-2:]))
        return cosine_logits(self.clip.project(high_res.float()), self.text_embeddings)

    def predict(self, inputs: torch.Tensor, data_samples: OptSampleList = None) -> SampleList:
        """Logits at the input size, then mmseg's postprocessing: padding cropped, resized to the original shape."""
        return self.postprocess_result(self.encode_decode(inputs, []), data_samples)

    def _forward(self, inputs: torch.Tensor, data_samples: OptSampleList = None) -> torch.Tensor:
        return self.encode_decode(inputs, [])

    def loss(self, inputs: torch.Tensor, data_samples: SampleList) -> dict:
        raise RuntimeError('OpenVocabSegmentor is a zero-shot (training-free) model: use it with a test loop only')


def openvocab_test_cfg(dataset: str, data_root: str, model: Dict, work_dir: str, scale: Optional[Sequence] = None,
                       num_workers: int = 2, launcher: str = 'none', backend: str = 'gloo',
                       max_images: Optional[int] = None, seed: int = 0) -> Dict:
    """An mmengine ``Runner`` config that evaluates ``model`` (an ``OpenVocabSegmentor`` config without
    ``class_names``, filled from the dataset) on one benchmark with mmseg's dataset and ``IoUMetric``.

    ``seed`` fixes mmengine's random state before the model is built (only randomly initialised parts depend on it).
    """
    if dataset not in DATASETS:
        raise ValueError(f'unknown dataset {dataset!r}; choose from {sorted(DATASETS)}')
    spec = copy.deepcopy(DATASETS[dataset])
    default_scale = spec.pop('scale')
    reduce_zero_label = spec.pop('reduce_zero_label')
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=tuple(scale or default_scale), keep_ratio=True),
                dict(type='LoadAnnotations', reduce_zero_label=reduce_zero_label),
                dict(type='PackSegInputs')]
    data = dict(**spec, data_root=data_root, pipeline=pipeline)
    if dataset == 'ade20k':
        data['reduce_zero_label'] = True
    if max_images is not None:
        data['indices'] = max_images
    from mmseg.registry import DATASETS as SEG_DATASETS
    classes = SEG_DATASETS.get(spec['type']).METAINFO['classes']
    model = dict(copy.deepcopy(model), type='OpenVocabSegmentor', class_names=list(classes))
    return dict(
        model=model, work_dir=work_dir, default_scope='mmseg', launcher=launcher, randomness=dict(seed=seed),
        env_cfg=dict(dist_cfg=dict(backend=backend)),
        test_dataloader=dict(batch_size=1, num_workers=num_workers, persistent_workers=False,
                             sampler=dict(type='DefaultSampler', shuffle=False), dataset=data),
        test_cfg=dict(type='TestLoop'), test_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=50)), log_level='WARNING')
