# nuScenes trainval at 224x476 (16x34 ViT-S/14 tokens): JAFAR's Low-Res row. nus_bev.py with this image size.
_base_ = ['./nus_bev.py']
final_size = (224, 476)
train_pipeline, val_pipeline = _base_.train_pipeline, _base_.val_pipeline
train_pipeline[1].final_size = val_pipeline[1].final_size = final_size  # MultiViewImageAffineAug
test_pipeline = val_pipeline
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = test_dataloader = dict(dataset=dict(pipeline=val_pipeline))
