# JAFAR pretraining for vit_base_patch16_siglip_512.v2_webli (paper setting; see _base_/jafar_pretrain.py).
_base_ = ['./_base_/jafar_pretrain.py']

backbone_name = 'vit_base_patch16_siglip_512.v2_webli'
model = dict(backbone=dict(model_name=backbone_name))
