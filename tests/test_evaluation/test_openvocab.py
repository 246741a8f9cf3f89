import pytest
import torch
import torch.nn.functional as F

from mmjafar.evaluation.openvocab import DenseCLIP, cosine_logits, prompt_names

TINY_CLIP = dict(model_name='vit_base_patch16_clip_224.openai', pretrained=False, random_init=True,
                 model_kwargs=dict(depth=2, embed_dim=64, num_heads=2, num_classes=24, img_size=64))


@pytest.fixture(scope='module')
def clip():
    torch.manual_seed(0)
    return DenseCLIP(**TINY_CLIP)


def test_dense_features_are_the_last_block_with_self_only_attention(clip):
    image = torch.randn(2, 3, 48, 80)  # any size that is a multiple of the patch
    feats = clip(image)
    assert feats.shape == (2, 64, 3, 5)
    # reference: the timm forward with the last block's attention restricted to each token itself
    vit = clip.vit
    inet_mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    inet_std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    mean = torch.tensor(vit.pretrained_cfg['mean']).view(1, 3, 1, 1)
    std = torch.tensor(vit.pretrained_cfg['std']).view(1, 3, 1, 1)
    pixels = image * inet_std + inet_mean  # the input is ImageNet-normalised; CLIP has its own statistics
    tokens = vit.norm_pre(vit._pos_embed(vit.patch_embed((pixels - mean) / std)))
    tokens = vit.blocks[0](tokens)
    n = tokens.shape[1]
    self_only = torch.full((n, n), float('-inf')).fill_diagonal_(0)
    ref = vit.norm(vit.blocks[1](tokens, attn_mask=self_only))[:, 1:]
    ref = ref.reshape(2, 3, 5, 64).permute(0, 3, 1, 2)
    torch.testing.assert_close(feats, ref, atol=1e-5, rtol=1e-4)
    # and it differs from the ordinary last block (attention not skipped)
    plain = vit.norm(vit.blocks[1](tokens))[:, 1:].reshape(2, 3, 5, 64).permute(0, 3, 1, 2)
    assert not torch.allclose(feats, plain, atol=1e-3)
    with pytest.raises(ValueError, match='multiples of 16'):
        clip(torch.randn(1, 3, 50, 64))


def test_projection_is_the_per_pixel_head(clip):
    feats = torch.randn(1, 64, 4, 6)
    emb = clip.project(feats)
    assert emb.shape == (1, 24, 4, 6)
    ref = F.normalize(clip.vit.head(feats.permute(0, 2, 3, 1)), dim=-1).permute(0, 3, 1, 2)
    torch.testing.assert_close(emb, ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(1, 4, 6))


def test_cosine_logits_pick_the_planted_class():
    text = F.normalize(torch.randn(5, 24), dim=-1)
    labels = torch.randint(0, 5, (2, 7, 9))
    pixels = text[labels].permute(0, 3, 1, 2)  # each pixel's embedding is its class's text embedding
    logits = cosine_logits(pixels, text)
    assert logits.shape == (2, 5, 7, 9)
    assert torch.equal(logits.argmax(1), labels)
    with pytest.raises(ValueError, match='same CLIP model'):
        cosine_logits(pixels, torch.randn(5, 12))


def test_prompt_names():
    assert prompt_names(['pottedplant', 'person', 'traffic_sign']) == ['potted plant', 'person', 'traffic sign']
