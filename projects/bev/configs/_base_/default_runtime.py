# Runtime shared by the BEV configs (mmengine Runner, scope mmjafar; the BEV package registers itself at import).
default_scope = 'mmjafar'
custom_imports = dict(imports=['projects.bev.bev'], allow_failed_imports=False)
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
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
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
