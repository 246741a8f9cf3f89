# Runtime of the BEV configs: mmjafar's (configs/_base_/default_runtime.py) in scope mmjafar, with the BEV package
# registered at import, a plain visualiser, and the hooks of a BEV training (best vehicle IoU kept).
_base_ = ['../../../../configs/_base_/default_runtime.py']
default_scope = 'mmjafar'
custom_imports = dict(imports=['projects.bev.bev'], allow_failed_imports=False)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2, save_best='bev/iou_vehicle',
                    rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
# BatchNorm buffers of the BEV networks drift apart between ranks (DDP broadcasts them only at training forwards):
# make every rank validate with the same statistics.
custom_hooks = [dict(type='SyncBuffersHook')]
visualizer = dict(type='Visualizer')
