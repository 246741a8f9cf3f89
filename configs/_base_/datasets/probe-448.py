# The FeatUp / JAFAR linear-probe protocol, shared by the dataset configs next to this file (they set the dataset
# type, root, folders and the head's class count): the probe model (../models/linear_probe_vit-s14-dinov2.py);
# resize the shorter side to 448, take the central 448x448 crop of image and label, no augmentation; predictions
# are evaluated at the crop.
_base_ = ['../models/linear_probe_vit-s14-dinov2.py']
crop_size = (448, 448)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # reduce_zero_label follows the dataset (ADE20K: True)
    dict(type='ResizeShortestEdge', scale=448, max_size=100000),  # no cap on the longer side
    dict(type='CenterCrop', crop_size=crop_size),
    dict(type='PackSegInputs'),
]
test_pipeline = train_pipeline[:-1] + [dict(type='EvalAtCurrentSize'), dict(type='PackSegInputs')]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
