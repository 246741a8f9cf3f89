# nuScenes v1.0-mini (mini_train 8 scenes / 323 samples, mini_val 2 / 81): smoke runs and overfitting only;
# its IoU is not comparable with trainval. Same images, grid and augmentation as nus_bev.py.
_base_ = ['./nus_bev.py']
version = 'v1.0-mini'
train_dataloader = dict(num_workers=2, dataset=dict(version=version, split='mini_train'))
val_dataloader = dict(num_workers=2, dataset=dict(version=version, split='mini_val'))
test_dataloader = val_dataloader
