# nuScenes trainval at 224x476 (16x34 ViT-S/14 tokens): JAFAR's Low-Res row. Same as nus_bev.py otherwise.
_base_ = ['./nus_bev.py']
final_size = (224, 476)
train_pipeline = [
    dict(type='LoadMultiViewImages', decode_reduction=1),
    dict(type='MultiViewImageAffineAug', final_size=final_size, is_train=True, scale_range=(0.98, 1.0267),
         zoom_range=(0.95, 1.05), rotate_range=(-2.5, 2.5)),
    dict(type='RandomBEVTransform', enabled={{_base_.use_bev_aug}}, rotate_range=(-20.0, 20.0),
         translate_range=(30.0, 20.0, 0.0)),
    dict(type='RasterizeBEVTargets', grid={{_base_.grid}}),
    dict(type='PackBEVInputs'),
]
val_pipeline = [
    dict(type='LoadMultiViewImages', decode_reduction=1),
    dict(type='MultiViewImageAffineAug', final_size=final_size, is_train=False, test_scale=1.0033),
    dict(type='RandomBEVTransform', enabled=False),
    dict(type='RasterizeBEVTargets', grid={{_base_.grid}}),
    dict(type='PackBEVInputs'),
]
test_pipeline = val_pipeline
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
