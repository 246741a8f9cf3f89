"""ADE20KProbeHook: metric arithmetic, learning on a synthetic ADE20K, and identical results under 2-process DDP."""
import os
import socket
from unittest.mock import MagicMock

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.model import BaseModel

from mmjafar.datasets.ade20k import ade20k_pairs
from mmjafar.engine.hooks import ADE20KProbeHook  # noqa: F401  (registration)
from mmjafar.evaluation.segmentation_metrics import miou_and_accuracy, segmentation_counts
from mmjafar.registry import HOOKS, MODELS
from mmjafar.testing import make_ade20k

HOOK_CFG = dict(type='ADE20KProbeHook', interval=2, train_subset=5, val_subset=3, img_size=56, probe_size=28,
                pixels_per_image=200, epochs=20, batch_size=256, lr=5e-2)


class TinyModel(BaseModel):
    """Backbone + upsampler, as UpsamplerPretrainer holds them."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = MODELS.build(dict(type='TimmViT', pretrained=False, random_init=True,
                                          model_kwargs=dict(depth=1)))
        self.upsampler = MODELS.build(dict(type='JAFAR', v_dim=384, qk_dim=16, num_heads=2))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return inputs


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('ADEChallengeData2016'))
    make_ade20k(root, num_train=5, num_val=3, size=(60, 72), seed=1)
    return root


@pytest.fixture(scope='module')
def model():
    with pytest.warns(UserWarning, match='RANDOM'):
        return TinyModel()


def test_counts_and_metrics_by_hand():
    pred = torch.tensor([[0, 1], [1, 2]])
    label = torch.tensor([[0, 1], [2, 255]])
    counts = segmentation_counts(pred, label, num_classes=3)
    # class 0: I=1 U=1; class 1: I=1, U=2 (pred 1 at a label-2 pixel); class 2: I=0, U=1
    assert counts.tolist() == [[1, 1, 0], [1, 2, 1], [1, 1, 1]]
    res = miou_and_accuracy(counts)
    assert res['mIoU'] == pytest.approx(100 * (1 + 0.5 + 0) / 3)
    assert res['aAcc'] == pytest.approx(100 * 2 / 3)


def test_generated_layout_and_reader(ade_root):
    pairs = ade20k_pairs(ade_root, 'training')
    assert len(pairs) == 5 and pairs[0][0].endswith('images/training/ADE_train_00000001.jpg')
    assert pairs[0][1].endswith('annotations/training/ADE_train_00000001.png')
    with pytest.raises(FileNotFoundError, match='ADEChallengeData2016'):
        ade20k_pairs(os.path.dirname(ade_root), 'training')


def _evaluate(ade_root, model, **overrides):
    hook = HOOKS.build(dict(HOOK_CFG, data_root=ade_root, **overrides))
    return hook, hook.evaluate(model)


def test_probe_learns_and_restores_train_mode(ade_root, model):
    model.train()
    hook, res = _evaluate(ade_root, model)
    assert model.training and not model.backbone.training  # frozen backbone stays in eval mode
    assert res['val_images'] == 3 and hook.last_results == res
    # the probe must beat the best constant prediction (the most frequent validation class)
    labels = torch.cat([hook.load(*pair, torch.device('cpu'))[1].flatten()
                        for pair in ade20k_pairs(ade_root, 'validation')])
    labels = labels[labels != 255]
    majority = 100 * torch.bincount(labels).max().item() / len(labels)
    assert res['aAcc'] > majority + 5, (res, majority)
    _, bilinear = _evaluate(ade_root, torch.nn.ModuleDict(dict(backbone=model.backbone)))
    assert 0 <= bilinear['mIoU'] <= 100 and bilinear != res


def test_hook_logs_every_interval_and_at_end(ade_root, model):
    hook = HOOKS.build(dict(HOOK_CFG, data_root=ade_root, epochs=1))
    runner = MagicMock()
    runner.model = model
    runner.max_iters = 4
    calls = []
    for it in range(4):
        runner.iter = it
        hook.after_train_iter(runner, it)
        calls.append(runner.message_hub.update_scalar.call_count)
    hook.after_train(runner)
    # evaluates at iteration 2 (after_train_iter), skips the last iteration (after_train runs then)
    assert calls == [0, 2, 2, 2] and runner.message_hub.update_scalar.call_count == 4
    assert runner.message_hub.update_scalar.call_args_list[0].args[0] == 'ade20k_probe/mIoU'


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, ade_root, out_path):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        import warnings
        warnings.simplefilter('ignore')
        _, res = _evaluate(ade_root, TinyModel())
        if rank == 0:
            torch.save(res, out_path)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_gloo_equals_one_process(ade_root, model, tmp_path):
    out = str(tmp_path / 'ddp.pt')
    mp.spawn(_ddp_worker, args=(2, _free_port(), ade_root, out), nprocs=2, join=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _, single = _evaluate(ade_root, model)
    finally:
        torch.set_num_threads(threads)
    assert torch.load(out) == single
