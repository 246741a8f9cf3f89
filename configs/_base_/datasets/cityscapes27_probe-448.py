# Cityscapes, 27 classes (gtFine labelIds 7..33). Linear-probe protocol at 448x448 (see probe-448.py).
_base_ = ['./probe-448.py']
dataset_type = 'Cityscapes27Dataset'
data_root = 'data/cityscapes'
num_classes = 27
model = dict(decode_head=dict(num_classes=num_classes))
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train')))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val')))
test_dataloader = val_dataloader
