# ADE20K (150 classes; label 0 "other" ignored). Linear-probe protocol at 448x448 (see probe-448.py).
_base_ = ['./probe-448.py']
dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
num_classes = 150
model = dict(decode_head=dict(num_classes=num_classes))
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='images/training', seg_map_path='annotations/training')))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation')))
test_dataloader = val_dataloader
