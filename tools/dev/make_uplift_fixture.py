"""Write ``tests/data/uplift.pt``: outputs of the official UPLiFT module on seeded weights and inputs.

The official code is not part of this repository. Check it out and pass its root::

    git clone https://github.com/mwalmer-umd/UPLiFT /tmp/UPLiFT   # fixture made at the commit in COMMIT below
    .venv/bin/python tools/dev/make_uplift_fixture.py /tmp/UPLiFT [--out tests/data/uplift.pt]

Only ``uplift/uplift.py`` is imported (by file path; it needs torch, torchvision and numpy, not omegaconf: the
architecture dicts are wrapped in attribute namespaces, which is all the module reads from its config).

The file follows the compact fixture format (``tests/data/README.md``): one ``state_dict`` (float16 values, exact
in float32) for the released ViT architecture, ``cases`` with ``constructor`` (keyword arguments of
``mmjafar.models.upsamplers.UPLiFT``; the official call is in ``official_call``), ``inputs``, ``output_shape``,
``output_channel_dim``, ``output_channels`` (every 8th channel) and ``output``. Cases of other architectures
(which exercise the remaining options of the config grammar) carry their own ``state_dict``.
"""
import argparse
import importlib.util
import os
import subprocess
from types import SimpleNamespace

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMIT = '85f09ee4512aacdb7ff194b5137fb65049e0dbe9'  # mwalmer-umd/UPLiFT main, 2026-05-11


def load_official(root: str):
    path = os.path.join(root, 'uplift', 'uplift.py')
    if not os.path.isfile(path):
        raise SystemExit(f'{path} not found: pass the root of a checkout of mwalmer-umd/UPLiFT')
    spec = importlib.util.spec_from_file_location('official_uplift', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def namespace(tree):
    if isinstance(tree, dict):
        return SimpleNamespace(**{k: namespace(v) for k, v in tree.items()})
    return tree


def seeded(model: torch.nn.Module, seed: int) -> None:
    """Random weights and BatchNorm statistics, rounded to float16 so that the stored fp16 values are exact."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith('running_var'):
                value = 0.5 + torch.rand(tensor.shape, generator=gen)
            elif name.endswith('running_mean'):
                value = 0.1 * torch.randn(tensor.shape, generator=gen)
            elif name.endswith('.weight') and tensor.dim() == 1:  # norm scales
                value = 1 + 0.1 * torch.randn(tensor.shape, generator=gen)
            else:
                fan_in = tensor[0].numel() if tensor.dim() > 1 else 16
                value = torch.randn(tensor.shape, generator=gen) / fan_in ** 0.5
            tensor.copy_(value.half().float())


def custom_arches():
    """Two small architectures covering the options the released ones leave unused."""
    recompute = dict(
        up_factor=2, attender=9, enc_share=False,
        encoder=dict(
            down_steps=2,
            block_0=dict(block='SingleConv', norm='layer', count=2, hc=[8, 12], one_by=False),
            down_1=dict(down_op='conv', factor=0.5, residual='bilinear'),
            block_1=dict(block='DoubleConv', norm='layer', count=1, hc=[16]),
            down_2=dict(down_op='max', factor=0.5, residual='none'),
            block_2=dict(block='SingleConv', norm='batch', count=1, hc=[16], residual=False)),
        decoder=dict(up_steps=1, ncat_c=0, ncat_s=1, enc_resample='none',
                     block_0=dict(block='DoubleConv', norm='batch', count=1, hc=[24]),
                     up_1=dict(up_op='tconv', factor=2, residual='bilinear'),
                     block_1=dict(block='SingleConv', norm='layer', count=1, hc=[20])),
        refiner=dict(enc_resample='bilinear', ncat_c=0, ncat_s=1,
                     block_0=dict(block='SingleConv', norm='batch', count=1, hc=[12])))
    no_attender = dict(
        up_factor=2, attender=-1, enc_share=True,
        encoder=dict(down_steps=1, block_0=dict(block='IdentityBlock', count=1, hc=[3]),
                     down_1=dict(down_op='none', factor=1.0, residual='none'),
                     block_1=dict(block='SingleConv', norm='batch', count=1, hc=[8])),
        decoder=dict(up_steps=1, ncat_c=0, ncat_s=1, enc_resample='bilinear',
                     block_0=dict(block='TransposeConv', count=1, hc=[16]),
                     up_1=dict(up_op='none'),
                     block_1=dict(block='SingleConv', norm='batch', count=1, hc=[16])))
    return recompute, no_attender


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('official_root', help='root of a checkout of github.com/mwalmer-umd/UPLiFT')
    parser.add_argument('--out', default=os.path.join(REPO, 'tests', 'data', 'uplift.pt'))
    args = parser.parse_args()
    official = load_official(args.official_root)
    try:
        commit = subprocess.run(['git', '-C', args.official_root, 'rev-parse', 'HEAD'], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = f'unknown (no git metadata; made for {COMMIT})'
    import yaml
    released = {}
    for name in ('dinov2-s14', 'dinov3-splus16'):
        with open(os.path.join(args.official_root, 'uplift', 'configs', f'uplift_{name}.yaml')) as f:
            released[name] = yaml.safe_load(f)
    if released['dinov2-s14']['uplift'] != released['dinov3-splus16']['uplift']:
        raise SystemExit('the two released ViT architectures differ: the fixture assumes one shared architecture')
    torch.manual_seed(0)

    def run(model, image, features, iters, outsize):
        model.enable_iterative(iters)
        with torch.no_grad():
            return model(image, features, outsize)

    def channels_of(out):
        return torch.arange(0, out.shape[1], 8)

    def case(constructor, image, features, iters, outsize, model, state_dict=None):
        out = run(model, image, features, iters, outsize)
        keep = channels_of(out)
        entry = dict(constructor=constructor, inputs=dict(image=image, features=features, output_size=tuple(
            outsize) if outsize is not None else tuple(out.shape[-2:])),
            output_shape=tuple(out.shape), output_channel_dim=1, output_channels=keep,
            output=out.index_select(1, keep).contiguous(),
            official_call=f'UPLiFT(in_channels, patch_size, cfg).eval(); enable_iterative({iters}); '
                          f'forward(image, features, {outsize})')
        if state_dict is not None:
            entry['state_dict'] = {k: v.half() if v.is_floating_point() else v for k, v in state_dict.items()}
        return entry

    gen = torch.Generator().manual_seed(1)
    vit = released['dinov3-splus16']['uplift']
    cases = {}
    model16 = official.UPLiFT(384, 16, namespace(vit)).eval()
    seeded(model16, 0)
    model14 = official.UPLiFT(384, 14, namespace(vit)).eval()
    model14.load_state_dict(model16.state_dict())
    image = torch.randn(1, 3, 48, 64, generator=gen)
    feats = torch.randn(1, 384, 3, 4, generator=gen)
    # 4 steps, 3x4 -> 48x64 = the image size: no final resize
    cases['a_dinov3_splus16'] = case(dict(arch='dinov3-splus16', iters=None), image, feats, 4, None, model16)
    image = torch.randn(1, 3, 56, 70, generator=gen)
    feats = torch.randn(1, 384, 4, 5, generator=gen)
    # patch 14: image encoded at 64x80, 4 steps to 64x80, then antialiased bilinear down to 56x70
    cases['b_dinov2_s14'] = case(dict(arch='dinov2-s14', iters=None), image, feats, 4, [56, 70], model14)
    image = torch.randn(2, 3, 64, 96, generator=gen)
    feats = torch.randn(2, 384, 4, 6, generator=gen)
    # batch 2, 2 steps to 16x24, then bilinear up to 20x30
    cases['c_batch2_resize'] = case(dict(arch='dinov3-splus16', iters=2), image, feats, 2, [20, 30], model16)

    recompute, no_attender = custom_arches()
    model = official.UPLiFT(16, 16, namespace(recompute)).eval()
    seeded(model, 2)
    image = torch.randn(1, 3, 16, 24, generator=gen)
    feats = torch.randn(1, 16, 4, 6, generator=gen)
    cases['d_custom_recompute'] = case(dict(arch=recompute, in_channels=16, patch_size=16, iters=2), image, feats,
                                       2, None, model, model.state_dict())
    model = official.UPLiFT(24, 14, namespace(no_attender)).eval()
    seeded(model, 3)
    image = torch.randn(1, 3, 28, 42, generator=gen)
    feats = torch.randn(1, 24, 2, 3, generator=gen)
    cases['e_custom_no_attender'] = case(dict(arch=no_attender, in_channels=24, patch_size=14, iters=2), image,
                                         feats, 2, [28, 42], model, model.state_dict())

    data = dict(
        state_dict={k: v.half() if v.is_floating_point() else v for k, v in model16.state_dict().items()},
        cases=cases,
        reference=dict(repository='https://github.com/mwalmer-umd/UPLiFT', commit=commit, file='uplift/uplift.py',
                       cls='UPLiFT(in_channels, patch_size, cfg) with cfg = the "uplift" section of a config',
                       call='model.eval(); model.enable_iterative(iters); model(image, features, outsize)',
                       configs={k: dict(uplift=v['uplift'], backbone=v['backbone']) for k, v in released.items()}),
        notes='Seeded random weights (fp16-exact), BatchNorm in eval mode, CPU fp32. Cases a-c use the released '
              'ViT architecture (uplift_dinov2-s14 / uplift_dinov3-splus16 layout) and the top-level state_dict; '
              'cases d-e use small custom architectures with their own state_dict. Made by '
              'tools/dev/make_uplift_fixture.py.')
    torch.save(data, args.out)
    size = os.path.getsize(args.out)
    print(f'wrote {args.out} ({size / 1e6:.2f} MB) from UPLiFT commit {commit}: '
          + ', '.join(f'{k} {tuple(v["output_shape"])}' for k, v in cases.items()))


if __name__ == '__main__':
    main()
