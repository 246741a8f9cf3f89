# Base of JAFAR pretraining (paper, Sec. 4 / official release): frozen backbone, images at img_size, targets at the
# backbone's own resolution, low-res views downsampled by d ~ U[2, 4], guidance image at x0.5, AdamW 2e-4,
# batch 4, 100k iterations, bfloat16 autocast on GPU (added by tools/pretrain_jafar.py when CUDA is present).
# Per-backbone configs set `backbone_name`; set the image folder with
#   --cfg-options train_dataloader.dataset.data_root=/path/to/imagenet/train
# Runtime: mmjafar's (../../_base_/default_runtime.py) in scope mmjafar, logged by iteration, with TensorBoard.
_base_ = ['../../_base_/default_runtime.py']
default_scope = 'mmjafar'

backbone_name = 'vit_small_patch14_dinov2.lvd142m'
img_size = 448
max_iters = 100_000
batch_size = 4  # per GPU

model = dict(
    type='UpsamplerPretrainer',
    backbone=dict(type='TimmViT', model_name=backbone_name, pretrained=True, checkpoint=None, random_init=False,
                  frozen=True),
    upsampler=dict(type='JAFAR', v_dim=None, qk_dim=128, num_heads=4, kernel_size=1),  # v_dim from the backbone
    loss=dict(type='CosineMSELoss', normalize='none'),  # paper eq. 3; 'minmax' = official release's loss
    downsample_range=(2.0, 4.0),
    guidance_scale=0.5,
    consistency_weight=0.0,  # 0.1 = the official release's blur/noise consistency term (224x224 outputs)
    consistency_size=(224, 224),
    seed=0)

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ImageFolderDataset', data_root='data/imagenet/train', img_size=img_size, verify='header'))

optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-5))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=max_iters)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10_000, max_keep_ckpts=3, save_last=True,
                    backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='ExportUpsamplerHook')]

vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=False, window_size=50)
randomness = dict(seed=0)
