"""SimpleBEV: loss / predict / tensor modes, one training + validation pass of every upsampler variant through
``tools/train.py`` on the synthetic nuScenes tree, and (slow) overfitting two synthetic samples."""
import importlib.util
import os

import pytest
import torch
from mmengine.structures import BaseDataElement, PixelData

import projects.bev.bev  # noqa: F401  (registration)
from mmjafar.registry import MODELS
from projects.bev.bev.datasets.synthetic import synthetic_cam2ego, synthetic_intrinsics
from .synthetic_training import SMALL_IMAGES, overfit_and_score, train_and_validate_synthetic, two_synthetic_samples

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_DIR = os.path.join(REPO, 'projects', 'bev', 'configs', 'simplebev')
TINY_VIT = dict(type='TimmViT', model_name='vit_small_patch14_dinov2', pretrained=False, random_init=True,
                model_kwargs=dict(depth=1))
GRID = dict(x_range=(-50, 50), y_range=(-50, 50), resolution=2.0, z_centers=(-2.75, -0.25, 2.25, 4.75))


def tiny_simplebev(upsampler=None, channels: int = 16) -> torch.nn.Module:
    return MODELS.build(dict(
        type='SimpleBEV', backbone=TINY_VIT, upsampler=upsampler, target_stride=8, grid=GRID,
        neck=dict(type='BEVImageNeck', in_channels=384, out_channels=channels), bev_channels=channels,
        bev_encoder=dict(type='ResNetUNet', in_channels=channels), head=dict(type='BEVHead', in_channels=channels)))


def hand_made_batch(batch: int = 2, size=(28, 60)):
    height, width = size
    inputs = dict(imgs=torch.randn(batch, 6, 3, height, width),
                  cam2img=torch.tensor(synthetic_intrinsics(size), dtype=torch.float32).expand(batch, 6, 3, 3),
                  cam2ego=torch.tensor(synthetic_cam2ego(), dtype=torch.float32).expand(batch, 6, 4, 4),
                  bev_aug=torch.eye(4).expand(batch, 4, 4))
    samples = []
    for i in range(batch):
        seg = torch.zeros(1, 50, 50)
        seg[:, 18:21, 23:25] = 1
        offset = torch.full((2, 50, 50), 255.0)
        offset[:, 18:21, 23:25] = 0.5
        sample = BaseDataElement(metainfo=dict(sample_token=f's{i}'))
        sample.gt_bev = PixelData(seg=seg, valid=torch.ones(1, 50, 50, dtype=torch.bool),
                                  centerness=torch.rand(1, 50, 50), offset=offset,
                                  valid_centerness=torch.ones(1, 50, 50, dtype=torch.bool))
        samples.append(sample)
    return inputs, samples


def test_simplebev_modes_and_gradients():
    torch.manual_seed(0)
    model = tiny_simplebev(dict(type='Bilinear'))
    inputs, samples = hand_made_batch()
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_seg', 'loss_centerness', 'loss_offset', 'loss_uncertainty'}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith('img_branch.backbone') for n in trainable)
    missing = [n for n, p in trainable.items() if p.grad is None]
    assert not missing, missing  # neck, compressor, UNet, heads and the uncertainty weights all get gradients
    model.eval()
    with torch.no_grad():
        logits = model(inputs, mode='tensor')
        out = model(inputs, samples, mode='predict')
    assert tuple(logits.shape) == (2, 1, 50, 50)
    assert tuple(out[1].pred_bev.seg.shape) == (1, 50, 50)
    torch.testing.assert_close(out[1].pred_bev.seg, logits[1].sigmoid())
    assert model.compressor[0].in_channels == 16 * 4  # neck channels x heights
    with pytest.raises(KeyError, match='BEVDataPreprocessor'):
        model(dict(imgs=inputs['imgs']), mode='tensor')
    with pytest.raises(ValueError, match='mode'):
        model(inputs, mode='bogus')


def test_segmentor_base_with_a_trivial_view_transform():
    """The base class runs any view transform module: here the camera-mean of the image features resized to
    the grid."""
    class MeanToGrid(torch.nn.Module):
        def forward(self, img_feats, inputs):
            return torch.nn.functional.interpolate(img_feats.mean(1), size=(50, 50), mode='bilinear')

    model = MODELS.build(dict(type='BEVSegmentor', backbone=TINY_VIT, grid=GRID,
                              neck=dict(type='BEVImageNeck', in_channels=384, out_channels=8),
                              head=dict(type='BEVHead', in_channels=8)))
    inputs, samples = hand_made_batch(1)
    with pytest.raises(NotImplementedError, match='view_transform'):
        model(inputs, samples, mode='loss')
    model.view_transform = MeanToGrid()
    losses = model(inputs, samples, mode='loss')
    sum(losses.values()).backward()
    assert model.neck.proj.weight.grad is not None
    assert tuple(model(inputs, mode='tensor').shape) == (1, 1, 50, 50)


@pytest.mark.parametrize('variant', ['lowres', 'bilinear', 'featup', 'jafar'])
def test_train_and_val_through_tools_train(variant, bev_synthetic_root, tmp_path, monkeypatch):
    """A few training steps on a fixed sample (the loss must go down) and one validation pass of each upsampler
    variant on the synthetic tree (tiny random ViT, random upsampler weights, 28x60 images), through
    ``tools/train.py``'s ``main()``."""
    train_and_validate_synthetic('simplebev', variant, bev_synthetic_root, tmp_path, monkeypatch, SMALL_IMAGES)


@pytest.mark.slow
def test_simplebev_overfits_two_synthetic_samples(bev_synthetic_root):
    """Trained on two synthetic samples (no augmentation), the model reaches vehicle IoU > 0.9 on them."""
    torch.manual_seed(0)
    _, batch = two_synthetic_samples(os.path.join(CONFIG_DIR, 'simplebev_dinov2-s14_bilinear_nus-vehicle_synthetic.py'),
                                     bev_synthetic_root)
    iou, _ = overfit_and_score(tiny_simplebev(dict(type='Bilinear'), channels=32), batch, 60)
    assert iou > 0.9, iou


def test_analyze_tool_counts_multiply_adds():
    """projects/bev/tools/analyze_bev_model.py: the compressor and the three heads match their analytic MAC
    counts, and one training step reports a peak memory."""
    spec = importlib.util.spec_from_file_location(
        'analyze_bev_model', os.path.join(REPO, 'projects', 'bev', 'tools', 'analyze_bev_model.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    model = tiny_simplebev(dict(type='Bilinear'), channels=8)
    inputs, samples = tool.random_batch(model, (28, 60), 'cpu')
    flops = tool.count_flops(model, inputs)
    cells = 50 * 50
    assert flops['by_module']['model.compressor.0'] * 1e9 == 8 * 4 * 8 * 9 * cells  # (C*Z) -> C, 3x3
    head_macs = 3 * (8 * 8 * 9 * cells + 8 * 8 * cells) + 8 * cells * (1 + 1 + 2)  # 3x3 blocks + 1x1 outputs
    assert flops['by_module']['model.head'] * 1e9 == pytest.approx(head_macs, rel=0.05)  # + instance norms
    assert flops['total'] > flops['by_module']['model.img_branch'] > 0
    memory = tool.measure_training_step(model, inputs, samples, 'cpu')
    assert memory['peak_mib'] >= memory['rss_before_mib'] > 0
