# JAFAR pretraining for vit_small_patch14_reg4_dinov2.lvd142m (paper setting; see _base_/jafar_pretrain.py).
_base_ = ['./_base_/jafar_pretrain.py']

backbone_name = 'vit_small_patch14_reg4_dinov2.lvd142m'
model = dict(backbone=dict(model_name=backbone_name))
