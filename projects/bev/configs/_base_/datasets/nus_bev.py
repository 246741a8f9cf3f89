# nuScenes trainval, vehicle BEV segmentation (design brief §1): six cameras at 224x480 with PointBeV's image
# augmentation, 200x200 cells of 0.5 m, min_visibility 2, BEV augmentation on in training. Batch 1 per GPU.
# Prepare: data/nuscenes/{v1.0-trainval, samples} (optionally cache the infos with
# projects/bev/tools/create_bev_infos.py and set ann_file).
dataset_type = 'NuScenesBEVDataset'
data_root = 'data/nuscenes/'
version = 'v1.0-trainval'
train_split, val_split = 'train', 'val'
train_ann_file, val_ann_file = '', ''  # e.g. 'bev_infos_train.pkl' (relative to data_root)
# The model's grid must equal this one (model configs read it as {{_base_.grid}} or redefine it identically).
grid = dict(x_range=(-50, 50), y_range=(-50, 50), resolution=0.5,
            z_centers=(-3.375, -2.125, -0.875, 0.375, 1.625, 2.875, 4.125, 5.375))
final_size = (224, 480)  # (H, W) of the augmented images
min_visibility = 2  # 1 = keep all vehicles, 2 = mask those under 40 % visibility (SimpleBEV)
use_bev_aug = True  # PointBeV's rigid BEV augmentation in training

# Scales are relative to the scale that fits the width (0.3 for 1600 -> 480): PointBeV's U(0.294, 0.308) and 0.301.
# The only pipeline of the BEV configs: nus_bev_lowres.py and nus_bev_synthetic.py set their `final_size` (step 1)
# and `grid` (step 3) in these steps.
train_pipeline = [
    dict(type='LoadMultiViewImages', decode_reduction=1),
    dict(type='MultiViewImageAffineAug', final_size=final_size, is_train=True, scale_range=(0.98, 1.0267),
         zoom_range=(0.95, 1.05), rotate_range=(-2.5, 2.5)),
    dict(type='RandomBEVTransform', enabled=use_bev_aug, rotate_range=(-20.0, 20.0),
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
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, version=version, split=train_split,
                 ann_file=train_ann_file, min_visibility=min_visibility, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, version=version, split=val_split,
                 ann_file=val_ann_file, min_visibility=min_visibility, pipeline=val_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='BEVIoUMetric', threshold=0.5)
test_evaluator = val_evaluator
