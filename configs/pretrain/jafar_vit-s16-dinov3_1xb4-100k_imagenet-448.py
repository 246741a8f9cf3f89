# JAFAR pretraining for vit_small_patch16_dinov3.lvd1689m (DINOv3 ViT-S/16; paper setting; see
# _base_/jafar_pretrain.py).
_base_ = ['./_base_/jafar_pretrain.py']

backbone_name = 'vit_small_patch16_dinov3.lvd1689m'
model = dict(backbone=dict(model_name=backbone_name))
