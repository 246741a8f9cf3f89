# Tiny synthetic nuScenes (projects/bev/tools/create_synthetic_nuscenes.py -> data/bev_synthetic, 90x160 JPEGs, the
# v1.0-mini splits): 56x120 images, 50x50 cells of 2 m with 4 heights, no workers. For CI and tests. nus_bev_mini.py
# with this root, image size and grid.
_base_ = ['./nus_bev_mini.py']
data_root = 'data/bev_synthetic/'
grid = dict(x_range=(-50, 50), y_range=(-50, 50), resolution=2.0, z_centers=(-2.75, -0.25, 2.25, 4.75))
final_size = (56, 120)
train_pipeline, val_pipeline = _base_.train_pipeline, _base_.val_pipeline
train_pipeline[1].final_size = val_pipeline[1].final_size = final_size  # MultiViewImageAffineAug
train_pipeline[3].grid = val_pipeline[3].grid = grid  # RasterizeBEVTargets
test_pipeline = val_pipeline
train_dataloader = dict(num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root, pipeline=val_pipeline))
test_dataloader = val_dataloader
