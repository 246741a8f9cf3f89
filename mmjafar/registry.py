"""Registries of mmjafar.

Design: every class is registered twice, in mmjafar's own child registries (scope ``mmjafar``) and in
mmengine's root registries. The root registration is what makes the one-line promise work: mmengine resolves
an unprefixed ``type`` in the current scope's registry and then its parents, never in sibling scopes, so
``type='JAFAR'`` resolves from an mmseg, mmdet or mmdet3d config only because the root is every scope's
parent. The child registries keep the explicit spelling ``type='mmjafar.JAFAR'`` working from every scope
(and they import ``mmjafar`` by themselves through ``locations``).

``MODELS.register_module()`` (and the other registries here) performs both registrations at once.
"""
from typing import Type

from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import Registry


class _RootMirroredRegistry(Registry):
    """A child registry whose ``register_module`` also registers into its parent (mmengine's root)."""

    def _register_module(self, module: Type, module_name=None, force: bool = False) -> None:
        super()._register_module(module, module_name=module_name, force=force)
        assert self.parent is not None
        self.parent._register_module(module, module_name=module_name, force=force)


def _child(root: Registry, name: str, location: str) -> Registry:
    return _RootMirroredRegistry(name, parent=root, scope='mmjafar', locations=[location])


MODELS = _child(MMENGINE_MODELS, 'model', 'mmjafar.models')
DATASETS = _child(MMENGINE_DATASETS, 'dataset', 'mmjafar.datasets')
TRANSFORMS = _child(MMENGINE_TRANSFORMS, 'transform', 'mmjafar.datasets')
METRICS = _child(MMENGINE_METRICS, 'metric', 'mmjafar.evaluation')
EVALUATOR = _child(MMENGINE_EVALUATOR, 'evaluator', 'mmjafar.evaluation')
HOOKS = _child(MMENGINE_HOOKS, 'hook', 'mmjafar.engine')
VISUALIZERS = _child(MMENGINE_VISUALIZERS, 'visualizer', 'mmjafar.visualization')

