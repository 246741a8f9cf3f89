# nuScenes v1.0-mini at 224x476 (Low-Res row): smoke runs and overfitting.
_base_ = ['./nus_bev_lowres.py']
version = 'v1.0-mini'
train_dataloader = dict(num_workers=2, dataset=dict(version=version, split='mini_train'))
val_dataloader = dict(num_workers=2, dataset=dict(version=version, split='mini_val'))
test_dataloader = val_dataloader
