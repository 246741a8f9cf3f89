"""End-to-end pretraining with mmengine's Runner on a tiny model: resume, DDP, export, set-up errors."""
import os
import os.path as osp
import socket

import pytest
import torch
import torch.multiprocessing as mp
from mmengine.config import Config
from mmengine.runner import Runner

import mmjafar  # noqa: F401
from mmjafar.engine import init_cpu_distributed, load_config, runner_checkpoint_loading, setup_runner_cfg
from mmjafar.models import JAFAR
from mmjafar.registry import MODELS
from tests.conftest import load_golden

from .pretrain_utils import tiny_cfg, write_images


def _upsampler_state(runner: Runner) -> dict:
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    return {k: v.detach().clone() for k, v in model.upsampler.state_dict().items()}


def _train(cfg: Config) -> Runner:
    setup_runner_cfg(cfg, launcher=cfg.get('launcher', 'none'))
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.fixture(scope='module')
def image_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('images'))
    write_images(root, n=8)
    return root


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, image_root):
    kwargs = dict(data_root=image_root, consistency_weight=0.1, random_crop_scale=(0.5, 1.0))
    full = _train(tiny_cfg(str(tmp_path / 'full'), max_iters=4, **kwargs))
    expected = _upsampler_state(full)

    first = _train(tiny_cfg(str(tmp_path / 'part'), max_iters=2, **kwargs))
    assert osp.isfile(tmp_path / 'part' / 'iter_2.pth')
    del first
    cfg = tiny_cfg(str(tmp_path / 'part'), max_iters=4, **kwargs)
    setup_runner_cfg(cfg, resume=True)
    resumed = Runner.from_cfg(cfg)
    with runner_checkpoint_loading():
        resumed.train()
    assert resumed.iter == 4
    got = _upsampler_state(resumed)
    assert set(got) == set(expected)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0, msg=key)
    # the run really trained: the weights moved away from the ones after 3 iterations
    start = torch.load(tmp_path / 'part' / 'iter_2.pth', map_location='cpu', weights_only=False)['state_dict']
    assert not torch.equal(start['upsampler.key_encoder.0.weight'], got['key_encoder.0.weight'])
    # the frozen backbone is not stored in the checkpoints
    assert not any(k.startswith('backbone.') for k in start) and int(start['step']) == 2


def test_export_loads_into_jafar_with_official_keys(tmp_path, image_root):
    runner = _train(tiny_cfg(str(tmp_path), data_root=image_root, max_iters=2))
    path = tmp_path / 'jafar_test_vit.pth'
    exported = torch.load(path, map_location='cpu', weights_only=True)
    official_keys = set(load_golden('jafar')['state_dict'])
    assert set(exported) == official_keys
    for key, value in _upsampler_state(runner).items():
        assert torch.equal(exported[key], value), key
    up = MODELS.build(dict(type='JAFAR', v_dim=64, qk_dim=16, num_heads=2,
                           init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    up.init_weights()
    assert torch.equal(up.key_encoder[0].weight, exported['key_encoder.0.weight'])
    card = (tmp_path / 'jafar_test_vit.md').read_text()
    assert 'test_vit' in card and 'feature dim: 64' in card and 'training steps: 2' in card
    assert 'final loss:' in card and 'n/a' not in card
    # a checkpoint for another feature dimension is refused with the fix in the message
    with pytest.raises(ValueError, match='v_dim=64'):
        JAFAR(v_dim=384, qk_dim=16, num_heads=2).load_state_dict(exported)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, work_dir: str, data_root: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    cfg = tiny_cfg(work_dir, data_root, max_iters=3, batch_size=4 // world, consistency_weight=0.1,
                   optimizer=dict(type='SGD', lr=0.5, momentum=0.9))
    setup_runner_cfg(cfg, launcher='pytorch')
    init_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    if rank == 0:
        torch.save(_upsampler_state(runner), osp.join(work_dir, 'ddp_state.pth'))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(tmp_path, image_root):
    single = _train(tiny_cfg(str(tmp_path / 'single'), image_root, max_iters=3, batch_size=4, consistency_weight=0.1,
                             optimizer=dict(type='SGD', lr=0.5, momentum=0.9)))
    expected = _upsampler_state(single)
    ctx = mp.get_context('spawn')
    port = _free_port()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, port, str(tmp_path / 'ddp'), image_root)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    got = torch.load(tmp_path / 'ddp' / 'ddp_state.pth', weights_only=True)
    moved = False
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=1e-4, atol=1e-5, msg=key)
    init = JAFAR(v_dim=64, qk_dim=16, num_heads=2)
    moved = not torch.allclose(init.key_encoder[0].weight, got['key_encoder.0.weight'])
    assert moved


def test_setup_runner_cfg_rules(tmp_path):
    cfg = tiny_cfg(str(tmp_path), str(tmp_path), max_iters=1)
    cfg.work_dir = None
    cfg.dump(str(tmp_path / 'my_run.py'))
    cfg = setup_runner_cfg(load_config(str(tmp_path / 'my_run.py')))
    assert cfg.work_dir == osp.join('./work_dirs', 'my_run')
    if not torch.cuda.is_available():
        assert cfg.optim_wrapper.type == 'OptimWrapper'
        with pytest.raises(ValueError, match='needs a CUDA GPU'):
            setup_runner_cfg(tiny_cfg(str(tmp_path), str(tmp_path), 1), amp=True)
        ddp = setup_runner_cfg(tiny_cfg(str(tmp_path), str(tmp_path), 1), launcher='pytorch')
        assert ddp.env_cfg.dist_cfg.backend == 'gloo'
        assert ddp.model_wrapper_cfg.device_ids is None and ddp.model_wrapper_cfg.find_unused_parameters is False
    with pytest.raises(FileNotFoundError, match='no such checkpoint'):
        setup_runner_cfg(tiny_cfg(str(tmp_path), str(tmp_path), 1), resume=str(tmp_path / 'missing.pth'))
    with pytest.raises(ValueError, match='launcher'):
        setup_runner_cfg(tiny_cfg(str(tmp_path), str(tmp_path), 1), launcher='mpi')


def test_bad_data_root_fails_with_the_fix(tmp_path):
    cfg = tiny_cfg(str(tmp_path / 'w'), str(tmp_path / 'nowhere'), max_iters=1)
    setup_runner_cfg(cfg)
    with pytest.raises(FileNotFoundError, match='data_root'):
        Runner.from_cfg(cfg).train()
