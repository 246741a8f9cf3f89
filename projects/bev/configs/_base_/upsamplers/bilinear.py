# Bilinear row: ViT features (stride 14) bilinearly resized (align_corners=False) to stride 8 (28x60 at 224x480).
upsampler = dict(type='Bilinear')
target_stride = 8
