# COCO-Stuff 164k, 27 coarse classes (original stuffthingmaps PNGs). Linear-probe protocol at 448x448 (see
# probe-448.py).
_base_ = ['./probe-448.py']
dataset_type = 'COCOStuff27Dataset'
data_root = 'data/coco_stuff164k'
num_classes = 27
model = dict(decode_head=dict(num_classes=num_classes))
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='images/train2017', seg_map_path='annotations/train2017')))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017')))
test_dataloader = val_dataloader
