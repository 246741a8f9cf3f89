# Tiny synthetic nuScenes (projects/bev/tools/create_synthetic_nuscenes.py -> data/bev_synthetic, 90x160 JPEGs):
# 56x120 images, 50x50 cells of 2 m with 4 heights, no workers. For CI and tests.
_base_ = ['./nus_bev.py']
data_root = 'data/bev_synthetic/'
version = 'v1.0-mini'
grid = dict(x_range=(-50, 50), y_range=(-50, 50), resolution=2.0, z_centers=(-2.75, -0.25, 2.25, 4.75))
final_size = (56, 120)
train_pipeline = [
    dict(type='LoadMultiViewImages', decode_reduction=1),
    dict(type='MultiViewImageAffineAug', final_size=final_size, is_train=True, scale_range=(0.98, 1.0267),
         zoom_range=(0.95, 1.05), rotate_range=(-2.5, 2.5)),
    dict(type='RandomBEVTransform', enabled={{_base_.use_bev_aug}}, rotate_range=(-20.0, 20.0),
         translate_range=(30.0, 20.0, 0.0)),
    dict(type='RasterizeBEVTargets', grid=grid),
    dict(type='PackBEVInputs'),
]
val_pipeline = [
    dict(type='LoadMultiViewImages', decode_reduction=1),
    dict(type='MultiViewImageAffineAug', final_size=final_size, is_train=False, test_scale=1.0033),
    dict(type='RandomBEVTransform', enabled=False),
    dict(type='RasterizeBEVTargets', grid=grid),
    dict(type='PackBEVInputs'),
]
test_pipeline = val_pipeline
train_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, version=version, split='mini_train', pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, version=version, split='mini_val', pipeline=val_pipeline))
test_dataloader = val_dataloader
