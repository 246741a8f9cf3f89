"""Dataset-level Grad-CAM faithfulness evaluation over an ImageNet-style folder, exact under DDP.

Selection: every image of ``root/<class folder>/*`` is listed (sorted), a seeded permutation picks
``num_images`` candidates, and the misclassified ones among them are dropped (the result says how many were
kept). Candidates are cut into consecutive batches of ``batch_size`` that ranks take in turn, so each image
is processed in the same batch whatever the number of processes; per-image values are gathered, ordered by
candidate position and averaged on every rank: 1 and N processes give the same numbers.
"""
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.logging import print_log
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from mmjafar.datasets.image_folder import IMG_EXTENSIONS
from .cam_metrics import CAM_METRICS, summarize_cam_metrics
from .gradcam import UpsampledGradCAM, split_batches


def read_class_index(path: str) -> Dict[str, int]:
    """Folder name -> class index from a JSON file.

    Accepted layouts: ``{"n01440764": 0, ...}`` or the Keras/torchvision ImageNet file
    ``{"0": ["n01440764", "tench"], ...}``.
    """
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or not data:
        raise ValueError(f'{path}: expected a JSON object mapping folder names to class indices')
    if all(isinstance(v, list) and v for v in data.values()):
        return {str(v[0]): int(k) for k, v in data.items()}
    if all(isinstance(v, int) for v in data.values()):
        return {str(k): int(v) for k, v in data.items()}
    raise ValueError(f'{path}: values must all be integers ({{"n01440764": 0}}) or lists ({{"0": ["n01440764", '
                     '"tench"]}})')


def list_labelled_images(root: str, class_index: Optional[Dict[str, int]] = None) -> List[Tuple[str, int]]:
    """Sorted ``(path, label)`` pairs of ``root/<class folder>/<image>`` (recursive inside each class folder).

    Labels are the folder's position among the sorted class folders (ImageNet's 1000 synset folders give the
    standard indices) unless ``class_index`` maps folder names to indices; folders it does not name are skipped.
    """
    if not osp.isdir(root):
        raise FileNotFoundError(f'{root!r} is not a folder; pass an ImageNet-style folder root/<class>/<images>')
    classes = sorted(d for d in os.listdir(root) if osp.isdir(osp.join(root, d)))
    if not classes:
        raise FileNotFoundError(f'{root!r} has no class sub-folders (expected root/<class>/<images>, e.g. ImageNet '
                                'val sorted into synset folders)')
    if class_index is None:
        if len(classes) != 1000:
            print_log(f'{root}: {len(classes)} class folders; labels are their sorted positions, which match a '
                      '1000-class head only for the full ImageNet list (pass a class index file otherwise)',
                      logger='current', level=30)
        class_index = {name: i for i, name in enumerate(classes)}
    exts = tuple(e.lower() for e in IMG_EXTENSIONS)
    samples = []
    for name in classes:
        if name not in class_index:
            continue
        for dirpath, dirnames, files in os.walk(osp.join(root, name), followlinks=True):
            dirnames.sort()
            samples.extend((osp.join(dirpath, f), class_index[name]) for f in sorted(files)
                           if f.lower().endswith(exts))
    if not samples:
        raise FileNotFoundError(f'no labelled image found under {root!r} (class folders: {classes[:5]}...)')
    return samples


def select_candidates(num_samples: int, num_images: Optional[int], seed: int) -> List[int]:
    """The first ``num_images`` indices of a seeded permutation of ``range(num_samples)`` (all when None)."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(num_samples, generator=generator).tolist()
    return order if num_images is None else order[:num_images]


class _LabelledImages(Dataset):

    def __init__(self, samples: Sequence[Tuple[str, int]], transform: Callable) -> None:
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        with Image.open(path) as img:
            image = self.transform(img.convert('RGB'))
        return image, label, index


def classifier_transform(classifier: torch.nn.Module) -> Callable:
    """timm's evaluation transform of ``classifier`` (resize, center crop, its own normalisation).

    The crop size is the classifier's own input size (``patch_embed.img_size``), not only its pretrained
    default, so models built with another ``img_size`` get matching inputs.
    """
    from timm.data import create_transform, resolve_data_config
    config = resolve_data_config({}, model=classifier)
    img_size = getattr(getattr(classifier, 'patch_embed', None), 'img_size', None)
    if img_size is not None:
        config['input_size'] = (3, int(img_size[0]), int(img_size[1]))
    return create_transform(**config)


@torch.no_grad()
def evaluate_cam_dataset(gradcam: UpsampledGradCAM, samples: Sequence[Tuple[str, int]],
                         num_images: Optional[int] = 2000, seed: int = 0, batch_size: int = 16,
                         num_workers: int = 2, transform: Optional[Callable] = None,
                         device: Optional[torch.device] = None,
                         progress: bool = False) -> Dict:
    """Evaluate ``gradcam`` on a seeded subset of ``samples``; identical results on every rank and world size.

    Returns the metric means in percent (:data:`CAM_METRICS`), ``num_images`` (correctly classified images
    scored), ``num_candidates``, ``accuracy`` (top-1 on the candidates, percent) and ``per_image``: for each
    scored image its path, label and the per-image fractions.
    """
    device = device or next(gradcam.classifier.parameters()).device
    transform = transform or classifier_transform(gradcam.classifier)
    candidates = select_candidates(len(samples), num_images, seed)
    chosen = [samples[i] for i in candidates]
    rank, world = get_dist_info()
    batches = split_batches(range(len(chosen)), batch_size)
    mine = batches[rank::world]
    loader = DataLoader(_LabelledImages(chosen, transform), batch_sampler=mine, num_workers=num_workers)
    records = []
    for step, (images, labels, positions) in enumerate(loader):
        out = gradcam.evaluate_batch(images.to(device), labels.to(device))
        kept = positions[out['correct']].tolist()
        for j, pos in enumerate(kept):
            rec = {'position': pos, 'path': chosen[pos][0], 'label': chosen[pos][1]}
            rec.update({k: float(out[k][j]) for k in CAM_METRICS + ('score', 'masked_score')})
            records.append(rec)
        if progress and rank == 0:
            print_log(f'CAM evaluation: batch {step + 1}/{len(mine)} on rank 0', logger='current')
    if world > 1:
        records = [r for part in all_gather_object(records) for r in part]
    records.sort(key=lambda r: r['position'])
    per_image = {k: torch.tensor([r[k] for r in records], dtype=torch.float64) for k in CAM_METRICS}
    summary = summarize_cam_metrics(per_image) if records else {**{k: float('nan') for k in CAM_METRICS},
                                                                'num_images': 0}
    summary['num_candidates'] = len(chosen)
    summary['accuracy'] = 100.0 * len(records) / max(1, len(chosen))
    summary['per_image'] = records
    return summary


def format_cam_table(rows: Dict[str, Dict]) -> str:
    """Markdown table, one row per upsampler: ``{name: summary}``."""
    lines = ['| upsampler | ' + ' | '.join(CAM_METRICS) + ' | images |', '|---|' + '---:|' * (len(CAM_METRICS) + 1)]
    for name, s in rows.items():
        lines.append(f'| {name} | ' + ' | '.join(f'{s[k]:.2f}' for k in CAM_METRICS) + f' | {s["num_images"]} |')
    return '\n'.join(lines)
