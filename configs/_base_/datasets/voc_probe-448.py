# Pascal VOC 2012 (21 classes). Linear-probe protocol at 448x448 (see probe-448.py).
_base_ = ['./probe-448.py']
dataset_type = 'PascalVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
num_classes = 21
model = dict(decode_head=dict(num_classes=num_classes))
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                 ann_file='ImageSets/Segmentation/train.txt'))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                 ann_file='ImageSets/Segmentation/val.txt'))
test_dataloader = val_dataloader
