"""Text side of the open-vocabulary evaluation: open_clip's tokenizer and text tower (random tiny weights)."""
import open_clip
import torch
import torch.nn.functional as F

from mmjafar.evaluation.openvocab import clip_text_embeddings


def tiny_clip():
    torch.manual_seed(0)
    return open_clip.CLIP(embed_dim=24, vision_cfg=dict(layers=1, width=32, head_width=16, patch_size=16, image_size=32),
                          text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=1))


def test_class_embeddings_average_the_prompts():
    model = tiny_clip().eval()
    templates = ('a photo of a {}.', 'a {} in the scene.')
    emb = clip_text_embeddings(['cat', 'pottedplant'], templates, model=model)
    assert emb.shape == (2, 24)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    tokenizer = open_clip.get_tokenizer('ViT-B-16')
    with torch.no_grad():
        plant = F.normalize(model.encode_text(tokenizer(['a photo of a potted plant.', 'a potted plant in the scene.'])),
                            dim=-1)
    torch.testing.assert_close(emb[1], F.normalize(plant.mean(0), dim=0), atol=1e-6, rtol=1e-5)
    assert not torch.allclose(emb[0], emb[1])
