# NYU Depth v2 (mmseg's NYUDataset layout: images/{train,test}, annotations/{train,test} 16-bit PNGs in mm).
# Linear-probe protocol at 448x448 (see probe-448.py) with depth maps instead of labels; the 480x640 frames are
# resized to 448x448 (mmcv's CenterCrop would leave the depth map uncropped). The probe regresses depth:
# mmseg's DepthEstimator with a BatchNorm + 1x1 conv head (SiLog loss).
_base_ = ['./probe-448.py']
model = dict(type='DepthEstimator',
             decode_head=dict(_delete_=True, type='LinearDepthHead', in_channels=384, max_depth=10.0))
dataset_type = 'NYUDataset'
data_root = 'data/nyu'
meta_keys = ('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
             'flip_direction', 'category_id')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='Resize', scale={{_base_.crop_size}}, keep_ratio=False),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
test_pipeline = train_pipeline[:-1] + [dict(type='EvalAtCurrentSize'), dict(type='PackSegInputs', meta_keys=meta_keys)]
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=train_pipeline,
                 data_prefix=dict(img_path='images/train', depth_map_path='annotations/train')))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=test_pipeline,
                 data_prefix=dict(img_path='images/test', depth_map_path='annotations/test')))
test_dataloader = val_dataloader
# δ1 ('d1') and RMSE among the reported metrics; no Eigen crop (its box is defined on the 480x640 frame)
val_evaluator = dict(_delete_=True, type='DepthMetric', max_depth_eval=10.0, min_depth_eval=1e-3, crop_type=None)
test_evaluator = val_evaluator
