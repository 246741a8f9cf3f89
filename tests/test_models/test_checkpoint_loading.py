"""init_cfg=dict(type='Pretrained', ...) loads strictly, with one-line errors for partial or broken files."""
import argparse
import inspect

import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModule
from mmengine.registry import MODELS as ROOT_MODELS

import mmjafar.models.necks as necks
import mmjafar.models.upsamplers as upsamplers
from mmjafar.models.checkpoint_loading import StrictPretrainedMixin, read_checkpoint, summarize_keys
from mmjafar.models.necks import FeatureUpsamplerNeck
from mmjafar.models.upsamplers import JAFAR
from mmjafar.registry import MODELS

TINY = dict(v_dim=8, qk_dim=32, num_heads=4)


def pretrained(path, **kwargs):
    return dict(type='Pretrained', checkpoint=str(path), **kwargs)


def jafar_file(tmp_path, name='jafar.pth', drop=(), extra=None, wrap=None):
    torch.manual_seed(0)
    sd = {k: v for k, v in JAFAR(**TINY).state_dict().items() if not k.startswith(drop or ('\0', ))}
    sd.update(extra or {})
    path = tmp_path / name
    torch.save(wrap(sd) if wrap else sd, path)
    return path, sd


def assert_one_line(err, *parts):
    text = str(err.value)
    assert '\n' not in text, text
    assert 'weights_only' not in text, text
    for part in parts:
        assert part in text, (part, text)


def test_complete_checkpoint_loads(tmp_path):
    path, sd = jafar_file(tmp_path, wrap=lambda sd: {'jafar': sd, 'optimizer': {}, 'step': 3})
    model = JAFAR(**TINY, init_cfg=pretrained(path))
    model.init_weights()
    for key, value in sd.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_missing_keys_are_an_error(tmp_path):
    """The issue's case: a JAFAR file without any cross_decode.* and sft_key.* key."""
    path, _ = jafar_file(tmp_path, drop=('cross_decode.', 'sft_key.'))
    model = JAFAR(**TINY, init_cfg=pretrained(path))
    with pytest.raises(ValueError) as err:
        model.init_weights()
    assert_one_line(err, 'JAFAR', str(path), 'missing', 'cross_decode.', 'sft_key.', 'strict=False')
    # through the registry and a config dict, as a segmentation config builds it
    built = MODELS.build(dict(type='JAFAR', **TINY, init_cfg=pretrained(path)))
    with pytest.raises(ValueError, match='missing'):
        built.init_weights()


def test_unexpected_keys_are_an_error_after_adaptation(tmp_path):
    # query_features_encoder.* is an official extra the adaptation drops: still fine
    ok, _ = jafar_file(tmp_path, 'ok.pth', extra={'query_features_encoder.0.weight': torch.zeros(2)})
    JAFAR(**TINY, init_cfg=pretrained(ok)).init_weights()
    bad, _ = jafar_file(tmp_path, 'bad.pth', extra={'decoder.head.weight': torch.zeros(2)})
    with pytest.raises(ValueError) as err:
        JAFAR(**TINY, init_cfg=pretrained(bad)).init_weights()
    assert_one_line(err, 'unexpected', 'decoder.head.weight')


def test_explicit_non_strict_loads_partially_and_logs(tmp_path, capsys):
    path, sd = jafar_file(tmp_path, drop=('cross_decode.', ))
    torch.manual_seed(1)
    model = JAFAR(**TINY, init_cfg=pretrained(path, strict=False))
    before = model.cross_decode.state_dict()
    model.init_weights()
    for key, value in sd.items():
        assert torch.equal(model.state_dict()[key], value), key
    for key, value in model.cross_decode.state_dict().items():
        assert torch.equal(value, before[key]), key  # untouched, as asked


def test_shape_mismatch_and_wrong_method_are_one_line(tmp_path):
    torch.manual_seed(0)
    sd = JAFAR(**TINY).state_dict()
    sd['key_encoder.1.norm1.weight'] = torch.zeros(5)
    torch.save(sd, tmp_path / 'shape.pth')
    with pytest.raises(ValueError) as err:
        JAFAR(**TINY, init_cfg=pretrained(tmp_path / 'shape.pth')).init_weights()
    assert_one_line(err, 'shape.pth', 'size mismatch for key_encoder.1.norm1.weight')
    torch.save({'up1.range_temp': torch.ones(1)}, tmp_path / 'featup.pth')
    with pytest.raises(ValueError) as err:
        JAFAR(**TINY, init_cfg=pretrained(tmp_path / 'featup.pth')).init_weights()
    assert_one_line(err, 'featup.pth', 'another method')


@pytest.mark.parametrize('kind', ['truncated', 'text', 'empty', 'pickle', 'missing', 'list', 'no_tensors'])
def test_broken_files_are_one_line_naming_the_file(tmp_path, kind):
    path, _ = jafar_file(tmp_path)
    target = tmp_path / f'{kind}.pth'
    if kind == 'truncated':
        target.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    elif kind == 'text':
        target.write_text('<html>404 Not Found</html>\n')
    elif kind == 'empty':
        target.write_bytes(b'')
    elif kind == 'pickle':  # a whole pickled object instead of weights
        torch.save({'args': argparse.Namespace(lr=1.0), 'w': torch.zeros(1)}, target)
    elif kind == 'list':
        torch.save([torch.zeros(1)], target)
    elif kind == 'no_tensors':
        torch.save({'epoch': 3, 'lr': 0.1}, target)
    model = JAFAR(**TINY, init_cfg=pretrained(target))
    error = FileNotFoundError if kind == 'missing' else ValueError
    with pytest.raises(error) as err:
        model.init_weights()
    assert_one_line(err, str(target))
    if kind == 'pickle':
        assert 'Namespace' in str(err.value)


@pytest.mark.parametrize('keep', [0.05, 0.5, 0.9, -8])
def test_truncated_anywhere(tmp_path, keep):
    path, _ = jafar_file(tmp_path)
    data = path.read_bytes()
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(data[:int(len(data) * keep)] if keep > 0 else data[:keep])
    with pytest.raises(ValueError) as err:
        JAFAR(**TINY, init_cfg=pretrained(cut)).init_weights()
    assert_one_line(err, str(cut))


def test_safetensors_files(tmp_path):
    from safetensors.torch import save_file
    torch.manual_seed(0)
    sd = {k: v.contiguous() for k, v in JAFAR(**TINY).state_dict().items()}
    save_file(sd, str(tmp_path / 'jafar.safetensors'))
    model = JAFAR(**TINY, init_cfg=pretrained(tmp_path / 'jafar.safetensors'))
    model.init_weights()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in sd.items())
    data = (tmp_path / 'jafar.safetensors').read_bytes()
    (tmp_path / 'cut.safetensors').write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError) as err:
        JAFAR(**TINY, init_cfg=pretrained(tmp_path / 'cut.safetensors')).init_weights()
    assert_one_line(err, 'cut.safetensors', 'not a readable .safetensors file')


def test_runner_checkpoint_with_prefix(tmp_path):
    """A pretraining Runner checkpoint (message hub objects beside the weights) loads under weights-only rules."""
    torch.manual_seed(0)
    sd = JAFAR(**TINY).state_dict()
    ckpt = {'meta': {'iter': 2}, 'message_hub': {'log_scalars': {'loss': HistoryBuffer([1.0, 2.0], [1, 1])}},
            'state_dict': {**{'upsampler.' + k: v for k, v in sd.items()}, 'backbone.w': torch.zeros(1)}}
    torch.save(ckpt, tmp_path / 'iter_2.pth')
    assert read_checkpoint(tmp_path / 'iter_2.pth')['meta'] == {'iter': 2}
    model = JAFAR(**TINY, init_cfg=pretrained(tmp_path / 'iter_2.pth', prefix='upsampler.'))
    model.init_weights()
    assert torch.equal(model.key_encoder[0].weight, sd['key_encoder.0.weight'])
    with pytest.raises(ValueError) as err:  # without the prefix no key is JAFAR's
        JAFAR(**TINY, init_cfg=pretrained(tmp_path / 'iter_2.pth')).init_weights()
    assert_one_line(err, 'iter_2.pth', 'shares no key')
    with pytest.raises(ValueError, match="prefix 'head.'"):
        JAFAR(**TINY, init_cfg=pretrained(tmp_path / 'iter_2.pth', prefix='head.')).init_weights()
    with pytest.raises(ValueError, match='takes checkpoint, prefix, map_location and strict'):
        JAFAR(**TINY, init_cfg=pretrained(tmp_path / 'iter_2.pth', strcit=False)).init_weights()


def test_neck_checkpoint_is_strict(tmp_path):
    cfg = dict(upsampler=dict(type='JAFAR', **TINY), out_channels=4)
    torch.manual_seed(0)
    sd = FeatureUpsamplerNeck(**cfg).state_dict()
    torch.save(sd, tmp_path / 'neck.pth')
    neck = FeatureUpsamplerNeck(**cfg, init_cfg=pretrained(tmp_path / 'neck.pth'))
    neck.init_weights()
    assert all(torch.equal(neck.state_dict()[k], v) for k, v in sd.items())
    torch.save({k: v for k, v in sd.items() if not k.startswith('projections.')}, tmp_path / 'no_proj.pth')
    with pytest.raises(ValueError) as err:
        FeatureUpsamplerNeck(**cfg, init_cfg=pretrained(tmp_path / 'no_proj.pth')).init_weights()
    assert_one_line(err, 'FeatureUpsamplerNeck', 'missing 2 keys: projections.* (2)')
    # the upsampler's own init_cfg inside the neck is strict as well
    torch.save({k[len('upsampler.'):]: v for k, v in sd.items() if k.startswith('upsampler.cross')},
               tmp_path / 'partial.pth')
    neck = FeatureUpsamplerNeck(dict(type='JAFAR', **TINY, init_cfg=pretrained(tmp_path / 'partial.pth')))
    with pytest.raises(ValueError, match='JAFAR: .*missing'):
        neck.init_weights()


def test_multilevel_neck_loads_its_upsamplers_strictly(tmp_path):
    """GuidedAlignNeck keeps its upsamplers in a plain container: their init_cfg checkpoints still load (strictly)."""
    from mmjafar.models.necks import GuidedAlignNeck
    path, sd = jafar_file(tmp_path)
    template = dict(type='JAFAR', qk_dim=32, num_heads=4, init_cfg=pretrained(path))
    neck = GuidedAlignNeck([8, 8], template, in_strides=[4, 8])
    neck.init_weights()
    up, = neck.upsamplers.upsamplers
    assert all(torch.equal(up.state_dict()[k], v) for k, v in sd.items())
    partial, _ = jafar_file(tmp_path, 'partial.pth', drop=('sft_key.', ))
    neck = GuidedAlignNeck([8, 8], dict(template, init_cfg=pretrained(partial)), in_strides=[4, 8])
    with pytest.raises(ValueError, match=r'JAFAR: checkpoint .*partial.pth.*missing 2 keys: sft_key'):
        neck.init_weights()


@pytest.mark.parametrize('package', [upsamplers, necks], ids=['upsamplers', 'necks'])
def test_every_upsampler_and_neck_loads_strictly(package):
    """Every registered module defined in the package (mmseg-dependent ones included when mmseg is installed)."""
    classes = {cls for registry in (MODELS, ROOT_MODELS) for cls in registry.module_dict.values()
               if inspect.isclass(cls) and cls.__module__.startswith(package.__name__ + '.')
               and issubclass(cls, BaseModule)}
    assert len(classes) >= (10 if package is upsamplers else 1)
    lax = sorted(cls.__name__ for cls in classes if not issubclass(cls, StrictPretrainedMixin))
    assert not lax, f'{lax} would load init_cfg Pretrained checkpoints with strict=False'


def test_summarize_keys():
    keys = ['a.b.weight', 'a.b.bias', 'a.c', 'c.weight', 'x']
    assert summarize_keys(keys) == '5 keys: a.* (3), c.weight, x'
    assert summarize_keys([f'l{i}.w' for i in range(9)], limit=2) == '9 keys: l0.w, l1.w and 7 more modules'
