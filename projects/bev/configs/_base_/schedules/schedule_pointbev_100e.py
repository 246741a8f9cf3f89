# PointBeV's optimisation, used by JAFAR for all three BEV models (design brief §2, §4): AdamW lr 3e-4,
# weight decay 1e-7, grad-norm clip 5; one-cycle per iteration 1e-4 -> 3e-4 (first 5 %) -> 5e-6, linear; 100 epochs,
# validation every epoch, best vehicle IoU kept (CheckpointHook in default_runtime.py). Batch 1 per GPU.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-4, weight_decay=1e-7),
                     clip_grad=dict(max_norm=5.0))
max_epochs = 100
param_scheduler = [
    dict(type='OneCycleLR', eta_max=3e-4, pct_start=0.05, div_factor=3.0, final_div_factor=20.0,
         anneal_strategy='linear', by_epoch=True, begin=0, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# the paper's batch is 1 per GPU; scale the learning rate yourself if you change it
auto_scale_lr = dict(enable=False, base_batch_size=1)
