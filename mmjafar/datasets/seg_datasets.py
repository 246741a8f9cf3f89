"""Segmentation datasets with the class sets of the FeatUp / JAFAR linear-probe protocol that mmseg lacks."""
from typing import Dict, Optional, Sequence, Tuple

from mmseg.datasets import BaseSegDataset

from mmjafar.registry import DATASETS

# ----------------------------------------------------------------------------------------- COCO-Stuff, 27 classes
#: the 27 coarse classes (12 thing + 15 stuff super-categories) in the order of the unsupervised-segmentation
#: protocol (PiCIE, STEGO, FeatUp, JAFAR); 'food-stuff' and 'furniture-stuff' are the stuff super-categories.
COCOSTUFF27_CLASSES = ('electronic', 'appliance', 'food', 'furniture', 'indoor', 'kitchen', 'accessory', 'animal',
                       'outdoor', 'person', 'sports', 'vehicle', 'ceiling', 'floor', 'food-stuff', 'furniture-stuff',
                       'raw-material', 'textile', 'wall', 'window', 'building', 'ground', 'plant', 'sky', 'solid',
                       'structural', 'water')

#: COCO-Stuff 164k ids (1..182; things 1..91 including the 11 ids without annotations, stuff 92..182) of each
#: super-category, from the official COCO and COCO-Stuff category hierarchies.
_SUPERCATEGORY_IDS: Dict[str, Tuple[int, ...]] = {
    'person': (1, ),
    'vehicle': tuple(range(2, 10)),          # bicycle .. boat
    'outdoor': tuple(range(10, 16)),         # traffic light, fire hydrant, street sign, stop sign, meter, bench
    'animal': tuple(range(16, 26)),          # bird .. giraffe
    'accessory': tuple(range(26, 34)),       # hat, backpack, umbrella, shoe, eye glasses, handbag, tie, suitcase
    'sports': tuple(range(34, 44)),          # frisbee .. tennis racket
    'kitchen': tuple(range(44, 52)),         # bottle, plate, wine glass, cup, fork, knife, spoon, bowl
    'food': tuple(range(52, 62)),            # banana .. cake
    'furniture': tuple(range(62, 72)),       # chair, couch, potted plant, bed, mirror, dining table, window, desk,
                                             # toilet, door
    'electronic': tuple(range(72, 78)),      # tv .. cell phone
    'appliance': tuple(range(78, 84)),       # microwave, oven, toaster, sink, refrigerator, blender
    'indoor': tuple(range(84, 92)),          # book, clock, vase, scissors, teddy bear, hair drier, toothbrush, brush
    'textile': (92, 93, 104, 105, 109, 131, 137, 141, 152, 167, 168),
    'building': (95, 96, 128, 151, 158, 166),
    'raw-material': (100, 132, 139, 143),
    'furniture-stuff': (98, 107, 108, 110, 112, 123, 130, 133, 156, 161, 165),
    'floor': (101, 114, 115, 116, 117, 118),
    'plant': (94, 97, 119, 124, 129, 134, 142, 163, 169),
    'food-stuff': (121, 122, 153, 170),
    'ground': (111, 125, 126, 136, 140, 144, 145, 147, 149, 154, 159),
    'structural': (99, 113, 138, 146, 164),
    'water': (120, 148, 155, 178, 179),
    'wall': (171, 172, 173, 174, 175, 176, 177),
    'window': (180, 181),
    'ceiling': (102, 103),
    'sky': (106, 157),
    'solid': (127, 135, 150, 160, 162, 182),
}


def cocostuff27_label_map() -> Dict[int, int]:
    """Pixel value of a COCO-Stuff ``stuffthingmaps`` PNG (COCO id - 1) -> coarse class index (0..26)."""
    mapping = {}
    for index, name in enumerate(COCOSTUFF27_CLASSES):
        for coco_id in _SUPERCATEGORY_IDS[name]:
            mapping[coco_id - 1] = index
    return mapping


# ----------------------------------------------------------------------------------------- Cityscapes, 27 classes
#: Cityscapes labelIds 7..33 (every non-void class, including those the 19-class benchmark ignores).
CITYSCAPES27_CLASSES = ('road', 'sidewalk', 'parking', 'rail track', 'building', 'wall', 'fence', 'guard rail',
                        'bridge', 'tunnel', 'pole', 'polegroup', 'traffic light', 'traffic sign', 'vegetation',
                        'terrain', 'sky', 'person', 'rider', 'car', 'truck', 'bus', 'caravan', 'trailer', 'train',
                        'motorcycle', 'bicycle')
CITYSCAPES_FIRST_NON_VOID = 7


class _MappedLabelsDataset(BaseSegDataset):
    """A dataset whose annotation values are remapped by a fixed ``LABEL_MAP`` (unlisted values stay, 255 ignored).

    mmseg's ``LoadAnnotations`` applies ``label_map`` to every annotation; this class makes that map the dataset's
    own instead of one derived from a class subset (subsets are refused: the protocol fixes the class set).
    """

    LABEL_MAP: Dict[int, int] = {}

    @classmethod
    def get_label_map(cls, new_classes: Optional[Sequence] = None) -> Dict[int, int]:
        if new_classes is not None and tuple(new_classes) != tuple(cls.METAINFO['classes']):
            raise ValueError(f'{cls.__name__} has the fixed class set {cls.METAINFO["classes"]}; remove '
                             '`classes` from metainfo')
        return dict(cls.LABEL_MAP)


@DATASETS.register_module()
class COCOStuff27Dataset(_MappedLabelsDataset):
    """COCO-Stuff 164k with the 27 coarse classes of the linear-probe protocol (FeatUp, JAFAR).

    Reads the original ``stuffthingmaps_trainval2017`` PNGs (pixel = COCO id - 1, 255 unlabelled) and maps them
    to the 27 super-categories of :data:`COCOSTUFF27_CLASSES`. Layout::

        data_root/images/train2017/000000000009.jpg
        data_root/annotations/train2017/000000000009.png   (stuffthingmaps)

    ``ann_file`` may name an image-id list (e.g. the curated ``Coco164kFull_Stuff_Coarse.txt`` of the protocol).
    Arguments are those of mmseg's ``BaseSegDataset``.
    """

    METAINFO = dict(classes=COCOSTUFF27_CLASSES,
                    palette=[[(37 * i) % 256, (91 * i + 50) % 256, (157 * i + 100) % 256] for i in range(27)])
    LABEL_MAP = cocostuff27_label_map()

    def __init__(self, img_suffix: str = '.jpg', seg_map_suffix: str = '.png', reduce_zero_label: bool = False,
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, reduce_zero_label=reduce_zero_label,
                         **kwargs)


@DATASETS.register_module()
class Cityscapes27Dataset(_MappedLabelsDataset):
    """Cityscapes with the 27 non-void classes (labelIds 7..33 -> 0..26, the rest ignored), as in FeatUp / JAFAR.

    Reads ``*_gtFine_labelIds.png`` (no conversion script needed)::

        data_root/leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png
        data_root/gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png

    Arguments are those of mmseg's ``BaseSegDataset``.
    """

    METAINFO = dict(classes=CITYSCAPES27_CLASSES,
                    palette=[[(53 * i) % 256, (97 * i + 30) % 256, (193 * i + 70) % 256] for i in range(27)])
    LABEL_MAP = {**{i: 255 for i in range(CITYSCAPES_FIRST_NON_VOID)},
                 **{i: i - CITYSCAPES_FIRST_NON_VOID for i in range(CITYSCAPES_FIRST_NON_VOID, 34)}}

    def __init__(self, img_suffix: str = '_leftImg8bit.png', seg_map_suffix: str = '_gtFine_labelIds.png',
                 reduce_zero_label: bool = False, **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, reduce_zero_label=reduce_zero_label,
                         **kwargs)
