"""The installed OpenMMLab stack works and finds mmjafar's modules from every scope."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope


def test_versions():
    import mmcv
    import mmdet
    import mmdet3d
    import mmengine
    import mmseg
    import torchvision
    assert torch.__version__.startswith('2.12.1')
    assert torchvision.__version__.startswith('0.27.1')
    assert (mmengine.__version__, mmcv.__version__) == ('0.10.7', '2.1.0')
    assert (mmseg.__version__, mmdet.__version__, mmdet3d.__version__) == ('1.2.2', '3.3.0', '1.4.0')


def test_mmcv_cpu_ops():
    from mmcv.ops import nms, roi_align
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    feats = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    rois = torch.tensor([[0, 0, 0, 4, 4]], dtype=torch.float32)
    out = roi_align(feats, rois, (2, 2), 1.0, 2, 'avg', True)  # scale, sampling ratio, mode, aligned
    assert out.shape == (1, 1, 2, 2)
    # the four quadrant means of the 4x4 ramp
    torch.testing.assert_close(out.flatten(), torch.tensor([2.5, 4.5, 10.5, 12.5]))


@pytest.mark.parametrize('scope,registry_module', [('mmseg', 'mmseg.registry'), ('mmdet3d', 'mmdet3d.registry'),
                                                   ('mmdet', 'mmdet.registry')])
@pytest.mark.parametrize('type_name', ['JAFAR', 'mmjafar.JAFAR'])
def test_registry_resolution_from_host_scopes(scope, registry_module, type_name):
    import importlib
    cfg = Config(dict(custom_imports=dict(imports=['mmjafar'], allow_failed_imports=False),
                      model=dict(type=type_name, v_dim=16, qk_dim=32)))
    from mmengine.utils import import_modules_from_strings
    import_modules_from_strings(**cfg.custom_imports)
    models = importlib.import_module(registry_module).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = models.build(cfg.model)
    from mmjafar.models.upsamplers import JAFAR
    assert type(model) is JAFAR and model.v_dim == 16


def test_registry_resolution_from_mmjafar_scope():
    from mmjafar.models.upsamplers import JAFAR
    from mmjafar.registry import MODELS
    for name in ('JAFAR', 'mmjafar.JAFAR'):
        with DefaultScope.overwrite_default_scope('mmjafar'):
            assert type(MODELS.build(dict(type=name, v_dim=8, qk_dim=32))) is JAFAR


def test_mmseg_encoder_decoder_forward_cpu():
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    norm_cfg = dict(type='BN', requires_grad=True)
    cfg = Config(dict(model=dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
        backbone=dict(type='ResNetV1c', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), norm_cfg=norm_cfg),
        decode_head=dict(type='FCNHead', in_channels=512, in_index=3, channels=32, num_convs=1, num_classes=5,
                         norm_cfg=norm_cfg, loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        train_cfg=dict(), test_cfg=dict(mode='whole'))))
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 64, 64), mode='tensor')
    assert logits.shape == (2, 5, 2, 2)  # ResNet output stride 32


@pytest.mark.parametrize('order', ['hosts_first', 'mmjafar_first'])
def test_no_registry_clash_with_host_packages(order):
    """mmjafar's root-registry names must not collide with what mmcv/mmseg/mmdet/mmdet3d register."""
    import subprocess
    import sys
    hosts = 'import mmcv.cnn, mmcv.ops, mmseg.models, mmdet.models, mmdet3d.models'
    code = f'{hosts}\nimport mmjafar' if order == 'hosts_first' else f'import mmjafar\n{hosts}'
    proc = subprocess.run([sys.executable, '-c', code + '\nprint("ok")'], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip().endswith('ok'), proc.stderr[-2000:]
