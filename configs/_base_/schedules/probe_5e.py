# COCO-Stuff linear-probe schedule of the JAFAR evaluation: 5 epochs, otherwise as probe_20e.
_base_ = ['./probe_20e.py']
num_epochs = 5
param_scheduler = [dict(type='CosineAnnealingLR', T_max=num_epochs, by_epoch=True, begin=0, end=num_epochs)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=num_epochs, val_interval=num_epochs)
default_hooks = dict(checkpoint=dict(interval=1))
