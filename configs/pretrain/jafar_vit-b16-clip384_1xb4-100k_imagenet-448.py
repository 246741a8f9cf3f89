# JAFAR pretraining for vit_base_patch16_clip_384 (paper setting; see _base_/jafar_pretrain.py).
_base_ = ['./_base_/jafar_pretrain.py']

backbone_name = 'vit_base_patch16_clip_384'
model = dict(backbone=dict(model_name=backbone_name))
