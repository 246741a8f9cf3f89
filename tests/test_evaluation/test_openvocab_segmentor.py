"""mmseg plumbing of the open-vocabulary evaluation on a tiny generated VOC-style set."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

import mmjafar  # noqa: F401
from mmjafar.evaluation.openvocab_segmentor import OpenVocabSegmentor, openvocab_test_cfg

TINY_VISUAL = dict(model_name='vit_base_patch16_clip_224.openai', pretrained=False, random_init=True,
                   model_kwargs=dict(depth=2, embed_dim=64, num_heads=2, num_classes=24, img_size=64))


@pytest.fixture(scope='module')
def voc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('VOC2012')
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f'2007_00000{i}' for i in range(3)]
    for i, name in enumerate(names):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / 'JPEGImages' / f'{name}.jpg')
        label = np.zeros((48, 64), np.uint8)
        label[10:30, 5 + i:40] = 1 + 7 * i   # classes 1, 8, 15 on background 0
        label[30:32] = 255                   # VOC's void border
        Image.fromarray(label).save(root / 'SegmentationClass' / f'{name}.png')
    (root / 'ImageSets/Segmentation/val.txt').write_text('\n'.join(names) + '\n')
    return root


@pytest.fixture(scope='module')
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('text') / 'voc_text.pt'
    torch.manual_seed(0)
    torch.save(F.normalize(torch.randn(21, 24), dim=-1), path)
    return path


def _cfg(voc_root, text_file, tmp_path, upsampler):
    model = dict(visual=TINY_VISUAL, upsampler=upsampler, text_embeddings=str(text_file))
    # shorter side 48 keeps the 64x48 images at their size
    return Config(openvocab_test_cfg('voc', str(voc_root), model, str(tmp_path), scale=(256, 48), num_workers=0))


def test_segmentor_predicts_full_resolution_maps(voc_root, text_file, tmp_path):
    cfg = _cfg(voc_root, text_file, tmp_path, dict(type='JAFAR', qk_dim=32))
    runner = Runner.from_cfg(cfg)
    model = runner.model
    assert isinstance(model, OpenVocabSegmentor) and model.upsampler.v_dim == 64
    assert len(model.class_names) == 21 and model.class_names[0] == 'background'
    batch = next(iter(runner.build_dataloader(cfg.test_dataloader)))
    with torch.no_grad():
        out = model.test_step(batch)
    assert out[0].pred_sem_seg.data.shape == (1, 48, 64)
    assert out[0].seg_logits.data.shape == (21, 48, 64)
    metrics = runner.test()
    assert set(metrics) >= {'aAcc', 'mIoU'} and 0 <= metrics['mIoU'] <= 100


def test_planted_perfect_prediction_scores_100(voc_root, text_file, tmp_path, monkeypatch):
    def planted(self, inputs, data_samples):
        logits = torch.stack([F.one_hot(s.gt_sem_seg.data[0].long().clamp_max(20), 21).permute(2, 0, 1).float()
                              for s in data_samples])
        return self.postprocess_result(logits, data_samples)

    monkeypatch.setattr(OpenVocabSegmentor, 'predict', planted)
    metrics = Runner.from_cfg(_cfg(voc_root, text_file, tmp_path, None)).test()
    assert metrics['aAcc'] == 100.0 and metrics['mIoU'] == 100.0


def test_text_embeddings_must_match_classes(tmp_path):
    bad = tmp_path / 'bad.pt'
    torch.save(torch.randn(3, 24), bad)
    with pytest.raises(ValueError, match='expected \\(21 classes, 24 dims\\)'):
        OpenVocabSegmentor(class_names=[str(i) for i in range(21)], visual=TINY_VISUAL, text_embeddings=str(bad))
    with pytest.raises(RuntimeError, match='zero-shot'):
        OpenVocabSegmentor(class_names=['a', 'b', 'c'], visual=TINY_VISUAL, text_embeddings=str(bad)).loss(None, [])


def _dist_worker(rank, world, port, voc_root, text_file, out_dir):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        metrics = Runner.from_cfg(_cfg(voc_root, text_file, f'{out_dir}/rank{rank}', dict(type='JAFAR', qk_dim=32))).test()
        torch.save(metrics, f'{out_dir}/metrics{rank}.pt')
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_gloo_run_matches_one_process(voc_root, text_file, tmp_path):
    """The sampler splits the 3 images over 2 ranks (one padded duplicate); IoUMetric gathers in dataset order."""
    import socket

    import torch.multiprocessing as mp
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers
    try:
        single = Runner.from_cfg(_cfg(voc_root, text_file, tmp_path / 'single', dict(type='JAFAR', qk_dim=32))).test()
    finally:
        torch.set_num_threads(threads)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    mp.spawn(_dist_worker, args=(2, port, voc_root, text_file, str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        assert torch.load(tmp_path / f'metrics{rank}.pt', weights_only=False) == single
