"""projects/bev/tools/analyze_bev_model.py counts the forward of every BEV model (the FLOP analyser traces it)."""
import importlib.util
import os

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

import projects.bev.bev  # noqa: F401  (registration)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tool():
    spec = importlib.util.spec_from_file_location(
        'analyze_bev_model_all', os.path.join(REPO, 'projects', 'bev', 'tools', 'analyze_bev_model.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


@pytest.mark.parametrize('model_name', ['pointbev', 'bevformer'])
def test_flops_of_pointbev_and_bevformer(model_name):
    tool = _tool()
    cfg = Config.fromfile(os.path.join(REPO, 'projects', 'bev', 'configs', model_name,
                                       f'{model_name}_dinov2-s14_bilinear_nus-vehicle_synthetic.py'))
    DefaultScope.get_instance(f'analyze_{model_name}', scope_name='mmjafar')
    model = tool.build_offline_model(cfg, vit_depth=1)
    inputs, _ = tool.random_batch(model, (28, 60), 'cpu')
    flops = tool.count_flops(model, inputs)
    assert flops['total'] > flops['by_module']['model.img_branch'] > 0
    assert flops['total'] - flops['by_module']['model.img_branch'] > 0  # the BEV side is counted too
