# The offline demo: JAFAR pretraining on the photographs bundled with scikit-image, on CPU in under 10 minutes.
#   python tools/pretrain_jafar.py configs/pretrain/jafar_demo.py
# Backbone: DINOv2 ViT-S/14 with its pretrained weights when they are in the local Hugging Face cache (or the hub
# is reachable); otherwise RANDOM weights, announced loudly. Ends with the held-out table (1 - cos and L2 to the
# backbone's true features at 2x and 4x: JAFAR vs bilinear vs nearest) and a PCA figure in the work dir.
_base_ = ['./_base_/jafar_pretrain.py']

img_size = 224
max_iters = 100
model = dict(
    backbone=dict(model_name='vit_small_patch14_dinov2.lvd142m', pretrained=True, random_init=True))

train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
    dataset=dict(_delete_=True, type='SkimageDataset', split='train', img_size=img_size,
                 random_crop_scale=(0.25, 1.0)))

optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=0, end=max_iters)]
train_cfg = dict(max_iters=max_iters)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
custom_hooks = [
    dict(type='ExportUpsamplerHook'),
    dict(type='HeldOutUpsamplingHook', dataset=dict(type='SkimageDataset', split='heldout', img_size=img_size),
         scales=(2, 4), pca_size=448)
]
