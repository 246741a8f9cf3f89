"""BEVIoUMetric: TP/FP/FN arithmetic on hand-made masks, sum over the split, and 2-process gloo evaluation."""
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from mmengine.evaluator import Evaluator
from mmengine.structures import BaseDataElement, PixelData

from projects.bev.bev.evaluation import BEVIoUMetric, confusion_counts


def _sample(pred, gt, valid=None) -> BaseDataElement:
    gt = torch.as_tensor(gt, dtype=torch.uint8)[None]
    valid = torch.ones_like(gt, dtype=torch.bool) if valid is None else torch.as_tensor(valid)[None]
    sample = BaseDataElement()
    sample.gt_bev = PixelData(seg=gt, valid=valid)
    sample.pred_bev = PixelData(seg=torch.as_tensor(pred, dtype=torch.float32)[None])
    return sample


def test_counts_on_hand_made_masks():
    gt = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 1]])
    pred = torch.tensor([[0.9, 0.2, 0.7, 0.1], [0.5, 0.49, 0.0, 0.6]])
    valid = torch.tensor([[True, True, True, True], [True, True, True, False]])
    # positives (>= 0.5): (0,0) (0,2) (1,0) (1,3); (1,3) is not valid
    assert confusion_counts(pred, gt, valid) == dict(tp=2, fp=1, fn=1)
    assert confusion_counts(pred, gt, torch.ones_like(valid)) == dict(tp=3, fp=1, fn=1)
    assert confusion_counts(pred, gt, valid, threshold=0.8) == dict(tp=1, fp=0, fn=2)
    with pytest.raises(ValueError, match='must match'):
        confusion_counts(pred[:, :2], gt, valid)


def test_iou_sums_counts_over_samples_not_mean():
    metric = BEVIoUMetric()
    evaluator = Evaluator(metric)
    perfect = _sample([[0.9, 0.1]], [[1, 0]])                          # tp 1: IoU 1
    poor = _sample([[0.9, 0.8, 0.7, 0.6]], [[1, 0, 0, 0]])             # tp 1, fp 3: IoU 0.25
    invalid_miss = _sample([[0.0, 0.9]], [[1, 0]], [[False, True]])   # fn masked out, fp 1
    evaluator.process([perfect, poor])
    evaluator.process([invalid_miss.to_dict()])                       # the Evaluator's dict form works too
    result = evaluator.evaluate(3)
    assert set(result) == {'bev/iou_vehicle'}
    assert result['bev/iou_vehicle'] == pytest.approx(2 / (2 + 4 + 0))  # not (1 + 0.25 + 0) / 3
    assert metric.results == []  # evaluate() clears the per-sample entries


def test_metric_validates_inputs():
    with pytest.raises(ValueError, match='threshold'):
        BEVIoUMetric(threshold=1.5)
    metric = BEVIoUMetric()
    with pytest.raises(KeyError, match='pred_bev'):
        metric.process({}, [dict(gt_bev=dict(seg=torch.zeros(1, 2, 2), valid=torch.ones(1, 2, 2)))])


NUM_SAMPLES = 5  # odd: DefaultSampler pads rank 1 with sample 0 in a 2-process run


def _random_pair(index: int):
    gen = torch.Generator().manual_seed(index)
    gt = (torch.rand(8, 8, generator=gen) > 0.6).to(torch.uint8)
    pred = torch.rand(8, 8, generator=gen)
    if index == 0:  # a very wrong sample, so counting the padded copy twice would change the IoU
        pred = 1.0 - gt.float()
    return pred, gt


def _evaluate(indices, size: int = NUM_SAMPLES) -> float:
    evaluator = Evaluator(BEVIoUMetric())
    for index in indices:
        evaluator.process([_sample(*_random_pair(index))])
    return evaluator.evaluate(size)['bev/iou_vehicle']


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _dist_worker(rank: int, world: int, port: int, queue) -> None:
    import os

    import torch.distributed as dist
    from mmengine.dataset import DefaultSampler

    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        sampler = DefaultSampler(list(range(NUM_SAMPLES)), shuffle=False)
        indices = list(sampler)
        value = _evaluate(indices)
        queue.put((rank, indices, value))
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_equals_one_process():
    single = _evaluate(range(NUM_SAMPLES))
    padded = _evaluate([0, 1, 2, 3, 4, 0], size=6)  # what a metric that kept the padding would see
    assert padded != pytest.approx(single)
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    mp.start_processes(_dist_worker, args=(2, _free_port(), queue), nprocs=2, join=True, start_method='spawn')
    results = sorted(queue.get(timeout=60) for _ in range(2))
    assert [r[1] for r in results] == [[0, 2, 4], [1, 3, 0]]  # rank 1 is padded with sample 0
    for _, _, value in results:  # every rank receives the broadcast result
        assert value == pytest.approx(single, abs=1e-12)
    assert np.isfinite(single) and 0 < single < 1
