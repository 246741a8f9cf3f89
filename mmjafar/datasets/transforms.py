"""Data transforms of the linear-probe protocol (plain callables, no mmcv needed)."""
from typing import Dict

from mmjafar.registry import TRANSFORMS


@TRANSFORMS.register_module()
class EvalAtCurrentSize:
    """Make the current (resized and cropped) image the one predictions are evaluated at.

    mmseg resizes predictions back to ``ori_shape`` and compares them with ``gt_sem_seg``. The probe protocol
    (FeatUp, JAFAR) evaluates on the 448x448 centre crop of image and label, so after ``CenterCrop`` this sets
    ``ori_shape = img_shape``: the prediction stays at the crop, where the (equally cropped) label is.
    Place it after the crop and before ``PackSegInputs``.
    """

    def __call__(self, results: Dict) -> Dict:
        if 'img_shape' not in results:
            raise KeyError('EvalAtCurrentSize needs `img_shape`: place it after LoadImageFromFile and the resize/crop')
        results['ori_shape'] = tuple(results['img_shape'][:2])
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'
