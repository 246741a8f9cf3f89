import json
import socket

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from mmjafar.evaluation import (CAM_METRICS, UpsampledGradCAM, build_vit_classifier, evaluate_cam_dataset,
                                format_cam_table, list_labelled_images, read_class_index, select_candidates)
from mmjafar.evaluation.cam_runner import classifier_transform
from mmjafar.models.upsamplers.builder import build_frozen_upsampler

CLASSES = ('n001', 'n002', 'n003')
TINY_VIT = dict(depth=2, embed_dim=64, num_heads=2, num_classes=3, img_size=64)


def make_models(upsampler: str = 'JAFAR'):
    torch.manual_seed(0)
    clf = build_vit_classifier(pretrained=False, random_init=True, model_kwargs=TINY_VIT)
    cfg = dict(type=upsampler, qk_dim=32) if upsampler == 'JAFAR' else upsampler
    return UpsampledGradCAM(clf, build_frozen_upsampler(cfg, 64))


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory):
    """ImageNet-style folder: 3 class folders x 4 random images (one nested one level deeper)."""
    root = tmp_path_factory.mktemp('imagenet')
    rng = np.random.default_rng(0)
    for c in CLASSES:
        (root / c / 'sub').mkdir(parents=True)
        for i in range(4):
            arr = rng.integers(0, 256, (72 + 8 * i, 80, 3), dtype=np.uint8)
            path = root / c / ('sub' if i == 3 else '') / f'img_{i}.JPEG'
            Image.fromarray(arr).save(path, format='JPEG')
    (root / 'n001' / 'notes.txt').write_text('not an image')
    return root


def test_list_and_select(image_folder, tmp_path):
    samples = list_labelled_images(str(image_folder))
    assert len(samples) == 12
    assert [lab for _, lab in samples] == [0] * 4 + [1] * 4 + [2] * 4
    assert samples[3][0].endswith('sub/img_3.JPEG')
    index = tmp_path / 'index.json'
    index.write_text(json.dumps({'0': ['n003', 'x'], '7': ['n001', 'y']}))  # Keras/torchvision layout
    mapping = read_class_index(str(index))
    assert mapping == {'n003': 0, 'n001': 7}
    subset = list_labelled_images(str(image_folder), mapping)
    assert sorted({lab for _, lab in subset}) == [0, 7] and len(subset) == 8
    assert select_candidates(12, 5, seed=3) == select_candidates(12, 5, seed=3)
    assert select_candidates(12, 5, seed=3) != select_candidates(12, 5, seed=4)
    assert sorted(select_candidates(12, None, seed=0)) == list(range(12))
    with pytest.raises(FileNotFoundError, match='class sub-folders'):
        list_labelled_images(str(image_folder / 'n001' / 'sub'))


def test_bilinear_cam_is_the_upsampled_low_res_gradcam():
    gradcam = make_models('Bilinear')
    x = torch.randn(2, 3, 64, 64)
    classes = torch.tensor([2, 0])
    logits, cam = gradcam.explain(x, classes)
    assert cam.shape == (2, 64, 64) and (cam >= 0).all() and (cam > 0).any()
    torch.testing.assert_close(logits, gradcam.logits(x))
    # reference: explicit autograd through a copy of the forward pass, CAM at 4x4 then bilinear (it is linear)
    clf = gradcam.classifier
    tokens = {}
    handle = clf.blocks[-1].norm1.register_forward_hook(
        lambda m, i, o: tokens.setdefault('t', o.detach().requires_grad_(True)))
    with torch.enable_grad():
        out = clf(x)
        t = tokens['t']
        grad = torch.autograd.grad(out[0, 2] + out[1, 0], t)[0]
    handle.remove()
    low = t.detach()[:, 1:].reshape(2, 4, 4, 64).permute(0, 3, 1, 2)
    alpha = grad[:, 1:].mean(1)
    ref = F.interpolate(torch.einsum('bc,bchw->bhw', alpha, low)[:, None], size=(64, 64), mode='bilinear',
                        align_corners=False)[:, 0].clamp_min(0)
    torch.testing.assert_close(cam, ref, atol=1e-5, rtol=1e-4)
    assert grad.abs().sum() > 0


def test_evaluate_batch_keeps_correct_images_and_masks():
    gradcam = make_models('JAFAR')
    x = torch.randn(3, 3, 64, 64)
    pred = gradcam.logits(x).argmax(1)
    labels = pred.clone()
    labels[1] = (pred[1] + 1) % 3  # one wrong label
    out = gradcam.evaluate_batch(x, labels)
    assert out['correct'].tolist() == [True, False, True]
    for key in CAM_METRICS:
        assert out[key].shape == (2, ) and ((out[key] >= 0) & (out[key] <= 1)).all()
    # the masked score is really the classifier on x * 1[CAM > 0]
    keep = torch.tensor([0, 2])
    _, cam = gradcam.explain(x[keep], labels[keep])
    masked = gradcam.logits(x[keep] * (cam > 0)[:, None]).softmax(1)[torch.arange(2), labels[keep]]
    torch.testing.assert_close(out['masked_score'], masked)
    torch.testing.assert_close(out['Complexity'], (cam > 0).double().mean((1, 2)))
    none_right = gradcam.evaluate_batch(x, (pred + 1) % 3)
    assert list(none_right) == ['correct'] and not none_right['correct'].any()


def _planted_index(image_folder, gradcam, path):
    """A class index under which some images are classified correctly: each folder gets its majority prediction."""
    samples = list_labelled_images(str(image_folder))
    transform = classifier_transform(gradcam.classifier)
    images = torch.stack([transform(Image.open(p).convert('RGB')) for p, _ in samples])
    pred = gradcam.logits(images).argmax(1).view(3, 4)
    mapping = {c: int(pred[i].mode().values) for i, c in enumerate(CLASSES)}
    path.write_text(json.dumps(mapping))
    expected_correct = int(sum((pred[i] == mapping[c]).sum() for i, c in enumerate(CLASSES)))
    return read_class_index(str(path)), expected_correct


def test_dataset_evaluation_counts_only_correct_images(image_folder, tmp_path):
    gradcam = make_models('JAFAR')
    mapping, expected = _planted_index(image_folder, gradcam, tmp_path / 'idx.json')
    samples = list_labelled_images(str(image_folder), mapping)
    result = evaluate_cam_dataset(gradcam, samples, num_images=None, seed=0, batch_size=5, num_workers=0)
    assert result['num_candidates'] == 12 and result['num_images'] == expected >= 3
    assert result['accuracy'] == pytest.approx(100 * expected / 12)
    assert [r['position'] for r in result['per_image']] == sorted(r['position'] for r in result['per_image'])
    for key in CAM_METRICS:
        assert result[key] == pytest.approx(100 * np.mean([r[key] for r in result['per_image']]))
    table = format_cam_table({'JAFAR': result})
    assert '| JAFAR |' in table and 'ADCC' in table


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _dist_worker(rank, world, port, folder, index, out_dir):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world)
    try:
        gradcam = make_models('JAFAR')
        samples = list_labelled_images(folder, read_class_index(index))
        result = evaluate_cam_dataset(gradcam, samples, num_images=9, seed=1, batch_size=2, num_workers=0)
        torch.save(result, f'{out_dir}/rank{rank}.pt')
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_gloo_run_matches_one_process(image_folder, tmp_path):
    import torch.multiprocessing as mp
    gradcam = make_models('JAFAR')
    mapping, _ = _planted_index(image_folder, gradcam, tmp_path / 'idx.json')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers: bitwise equality needs the same kernels' reduction order
    try:
        single = evaluate_cam_dataset(gradcam, list_labelled_images(str(image_folder), mapping), num_images=9,
                                      seed=1, batch_size=2, num_workers=0)
    finally:
        torch.set_num_threads(threads)
    mp.spawn(_dist_worker, args=(2, _free_port(), str(image_folder), str(tmp_path / 'idx.json'), str(tmp_path)),
             nprocs=2, join=True)
    for rank in range(2):
        result = torch.load(tmp_path / f'rank{rank}.pt', weights_only=False)
        assert result['num_images'] == single['num_images'] > 0
        assert result['per_image'] == single['per_image']  # bit-identical per-image values
        for key in CAM_METRICS:
            assert result[key] == single[key]
