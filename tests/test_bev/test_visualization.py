"""BEV visualisation: the figure's panels and the visualize_bev tool (GT only and with a checkpoint)."""
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import torch
from mmengine.model import BaseModel
from mmengine.structures import PixelData

from mmjafar.registry import MODELS
from projects.bev.bev.visualization import FN_COLOR, FP_COLOR, TP_COLOR, render_bev_sample

REPO = Path(__file__).resolve().parents[2]
SYNTHETIC_CFG = REPO / 'projects/bev/configs/_base_/datasets/nus_bev_synthetic.py'


def _tool():
    spec = importlib.util.spec_from_file_location('visualize_bev', REPO / 'projects/bev/tools/visualize_bev.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_render_panels_and_colours():
    imgs = np.zeros((6, 3, 20, 40), np.uint8)
    imgs[:, 0] = 200  # red cameras
    gt = np.zeros((10, 10), np.uint8)
    gt[5, 1] = gt[5, 8] = 1  # below the panel labels
    valid = np.ones((10, 10), bool)
    pred = np.zeros((10, 10), np.float32)
    pred[5, 1] = 0.9   # TP
    pred[8, 8] = 0.7   # FP; (5, 8) is a FN
    fig = render_bev_sample(torch.from_numpy(imgs), gt, valid, pred, tile_width=40)
    # 2 rows of 3 tiles of 40x20, then two 40x40 BEV panels with 4-pixel separators
    assert fig.shape == (40, 3 * 40 + 2 * (4 + 40), 3) and fig.dtype == np.uint8
    assert fig[38, 38, 0] == 200 and fig[38, 38, 1] == 0  # below the camera label
    gt_panel = fig[:, 124:164]
    pred_panel = fig[:, 168:208]
    cell = lambda panel, r, c: tuple(panel[4 * r + 2, 4 * c + 2])  # noqa: E731 (10 cells -> 40 pixels)
    assert cell(gt_panel, 5, 8) == (255, 255, 255) and cell(gt_panel, 8, 8) == (30, 30, 30)
    assert cell(pred_panel, 5, 1) == TP_COLOR and cell(pred_panel, 8, 8) == FP_COLOR
    assert cell(pred_panel, 5, 8) == FN_COLOR


def test_tool_gt_only_on_synthetic(tmp_path, bev_synthetic_root, capsys):
    out = tmp_path / 'vis'
    paths = _tool().main([str(SYNTHETIC_CFG), '--out-dir', str(out), '--num', '1', '--tile-width', '120',
                          '--cfg-options', f'val_dataloader.dataset.data_root={bev_synthetic_root}'])
    assert len(paths) == 1 and 'wrote' in capsys.readouterr().out
    fig = cv2.imread(paths[0])[..., ::-1]
    assert fig.shape == (112, 360 + 4 + 112, 3)  # 56x120 tiles, one 112x112 GT panel
    front = fig[:56, 120:240]
    assert ((front[..., 0] > 180) & (front[..., 1] < 80)).sum() > 50  # the red car in CAM_FRONT
    gt_panel = fig[:, 364:].astype(int)
    # car_front covers rows 19..21, cols 24..26 of the 50x50 grid -> white around pixel (45, 56)
    assert (gt_panel[45, 56] == 255).all() and (gt_panel[105, 5] < 80).all()
    # the occluded car (rows 24..26, cols 18..20) is drawn grey (not valid)
    assert 100 < gt_panel[56, 43, 0] < 140


@MODELS.register_module(force=True)
class _ConstantBEVModel(BaseModel):
    """Predicts one probability sigmoid(bias) everywhere (the checkpoint sets the bias)."""

    def __init__(self, grid_shape=(50, 50)):
        super().__init__(data_preprocessor=dict(type='BEVDataPreprocessor'))
        self.grid_shape = tuple(grid_shape)
        self.bias = torch.nn.Parameter(torch.tensor(-5.0))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        prob = torch.sigmoid(self.bias).expand(1, *self.grid_shape)
        for sample in data_samples:
            sample.pred_bev = PixelData(seg=prob.detach().clone())
        return data_samples


def test_tool_with_checkpoint(tmp_path, bev_synthetic_root):
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(state_dict=dict(bias=torch.tensor(5.0))), ckpt)  # everything positive after loading
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"_base_ = ['{SYNTHETIC_CFG}']\nmodel = dict(type='_ConstantBEVModel')\n")
    paths = _tool().main([str(cfg), '--checkpoint', str(ckpt), '--out-dir', str(tmp_path / 'vis'),
                          '--indices', '1', '--tile-width', '120',
                          '--cfg-options', f'val_dataloader.dataset.data_root={bev_synthetic_root}'])
    fig = cv2.imread(paths[0])[..., ::-1]
    assert fig.shape == (112, 360 + 2 * (4 + 112), 3)
    pred = fig[:, 480:]
    assert tuple(pred[45, 56]) == TP_COLOR and tuple(pred[105, 5]) == FP_COLOR
