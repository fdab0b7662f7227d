"""Object encoder, spatial transformer, image encoder: shapes, references, padding invariance."""

import math

from leo_ros.model.config import (ImageEncoderConfig, LLMConfig, ObjectEncoderConfig,
                                  PolicyConfig, SpatialConfig)
from leo_ros.model.image_encoder import ImageEncoder
from leo_ros.model.object_encoder import ball_query, farthest_point_sample, ObjectEncoder
from leo_ros.model.spatial import pairwise_features, SpatialTransformer
import numpy as np
import pytest
import torch

TINY_OBJECTS = {'centroids': (8, 4), 'group_size': (8, 8), 'mlps': ((8, 8), (8, 16), (16, 32))}
TINY_SPATIAL = SpatialConfig(width=32, layers=2, heads=4)


def random_points(*shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    xyz = torch.randn(*shape, 3, generator=generator)
    xyz = xyz / xyz.norm(dim=-1, keepdim=True).amax(dim=-2, keepdim=True)  # unit sphere
    rgb = torch.rand(*shape, 3, generator=generator) * 2 - 1
    return torch.cat([xyz, rgb], dim=-1)


def test_farthest_point_sample_matches_a_direct_loop():
    xyz = random_points(3, 50)[..., :3]
    chosen = farthest_point_sample(xyz, 10)
    for b in range(3):
        points = xyz[b].numpy().astype(np.float64)
        expected = [0]
        nearest = np.full(len(points), np.inf)
        for _ in range(9):
            nearest = np.minimum(nearest, ((points - points[expected[-1]]) ** 2).sum(1))
            expected.append(int(nearest.argmax()))
        assert chosen[b].tolist() == expected


@pytest.mark.parametrize('radius, group_size', [(0.2, 8), (0.6, 16), (5.0, 4)])
def test_ball_query_matches_a_direct_loop(radius, group_size):
    xyz = random_points(2, 40, seed=1)[..., :3]
    centres = xyz[:, :5]
    groups = ball_query(xyz, centres, radius, group_size)
    assert groups.shape == (2, 5, group_size)
    for b in range(2):
        for s in range(5):
            distance = (xyz[b] - centres[b, s]).norm(dim=-1)
            inside = torch.nonzero(distance <= radius).flatten().tolist()[:group_size]
            expected = inside + [inside[0]] * (group_size - len(inside))
            assert groups[b, s].tolist() == expected


@pytest.mark.parametrize('kind', ['pointnet++', 'pointnet'])
def test_object_encoder_shapes_and_padding(kind):
    encoder = ObjectEncoder(ObjectEncoderConfig(kind=kind, **TINY_OBJECTS)).eval()
    points = random_points(2, 5, 64)                                      # (B, K, P, 6)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    with torch.no_grad():
        features = encoder(points, mask)
        alone = encoder(points[1:, :2])
    assert features.shape == (2, 5, 32)
    assert torch.all(features[1, 2:] == 0)
    assert torch.allclose(features[1, :2], alone[0], atol=1e-6)


def test_object_encoder_classification_head():
    encoder = ObjectEncoder(ObjectEncoderConfig(num_classes=7, **TINY_OBJECTS))
    assert encoder.classify(random_points(3, 64)).shape == (3, 7)
    with pytest.raises(RuntimeError, match='num_classes'):
        ObjectEncoder(ObjectEncoderConfig(**TINY_OBJECTS)).classify(random_points(1, 64))


def test_pairwise_features_match_a_direct_computation():
    centres = torch.randn(2, 6, 3)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    features = pairwise_features(centres, mask)
    assert features.shape == (2, 6, 6, 5)
    for b in range(2):
        valid = int(mask[b].sum())
        largest = max(math.dist(centres[b, i].tolist(), centres[b, j].tolist())
                      for i in range(valid) for j in range(valid))
        for i in range(valid):
            for j in range(valid):
                if i == j:
                    continue
                dx, dy, dz = (centres[b, i] - centres[b, j]).tolist()
                d = math.sqrt(dx * dx + dy * dy + dz * dz)
                dxy = math.sqrt(dx * dx + dy * dy)
                expected = [d / largest, dz / d, dxy / d, dy / dxy, dx / dxy]
                assert np.allclose(features[b, i, j].tolist(), expected, atol=1e-5)


def _spatial_inputs(objects=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(1, objects, 32, generator=generator)
    locations = torch.cat([torch.randn(1, objects, 3, generator=generator) * 2,
                           torch.rand(1, objects, 3, generator=generator)], dim=-1)
    pose = torch.tensor([[0.5, -0.3, 0.7]])
    return features, locations, pose


@pytest.mark.parametrize('ablate', [False, True])
def test_spatial_padding_changes_nothing(ablate):
    config = SpatialConfig(width=32, layers=2, heads=4, ablate_pairwise_geometry=ablate)
    model = SpatialTransformer(32, config).eval()
    features, locations, pose = _spatial_inputs()
    padded_features = torch.cat([features, torch.randn(1, 3, 32) * 10], dim=1)
    padded_locations = torch.cat([locations, torch.randn(1, 3, 6) * 10], dim=1)
    mask = torch.tensor([[True] * 4 + [False] * 3])
    with torch.no_grad():
        tokens, token_mask = model(features, locations, torch.ones(1, 4, dtype=torch.bool), pose)
        padded, padded_mask = model(padded_features, padded_locations, mask, pose)
    assert tokens.shape == (1, 5, 32) and padded.shape == (1, 8, 32)
    assert padded_mask.tolist() == [[True] * 5 + [False] * 3]
    assert torch.allclose(tokens, padded[:, :5], atol=1e-5)


def test_spatial_geometry_bias_sees_positions():
    model = SpatialTransformer(32, TINY_SPATIAL).eval()
    ablated = SpatialTransformer(32, SpatialConfig(width=32, layers=2, heads=4,
                                                   ablate_pairwise_geometry=True,
                                                   ablate_location_embedding=True)).eval()
    assert ablated.layers[0].attention.pair_weights is None
    features, locations, pose = _spatial_inputs()
    moved = locations.clone()
    moved[0, 0, :3] += 3.0
    mask = torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        assert not torch.allclose(model(features, locations, mask, pose)[0],
                                  model(features, moved, mask, pose)[0])
        # without geometry and location the embodied token does not see object positions
        assert torch.allclose(ablated(features, locations, mask, pose)[0],
                              ablated(features, moved, mask, pose)[0], atol=1e-6)


def test_image_encoder_shape():
    encoder = ImageEncoder(ImageEncoderConfig(image_size=32, channels=(4, 8)))
    assert encoder(torch.rand(2, 3, 48, 64)).shape == (2, 8)


@pytest.mark.parametrize('factory, match', [
    (lambda: ObjectEncoderConfig(kind='voxels'), 'kind'),
    (lambda: ObjectEncoderConfig(radii=(0.2, -1)), 'radii'),
    (lambda: SpatialConfig(width=30, heads=8), 'divisible'),
    (lambda: LLMConfig(dtype='int8'), 'dtype'),
    (lambda: ImageEncoderConfig(kind='hf'), 'path'),
    (lambda: PolicyConfig(action_tokenizer='fast'), 'action_tokenizer'),
])
def test_configs_name_bad_values(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_policy_config_round_trips_through_a_dict():
    config = PolicyConfig(spatial=TINY_SPATIAL, llm=LLMConfig(layers=2))
    assert PolicyConfig.from_dict(config.to_dict()) == config
    assert LLMConfig(source='7b').hidden_size == 4096


def test_first_level_samples_centroids_from_the_candidates_only():
    from leo_ros.model.object_encoder import SetAbstraction
    level = SetAbstraction(8, 0.3, 8, 0, (8,), fps_candidates=20)
    xyz = random_points(2, 100, seed=4)[..., :3]
    centres, features = level(xyz, None)
    assert centres.shape == (2, 8, 3) and features.shape == (2, 8, 8)
    for b in range(2):
        for centre in centres[b]:
            assert (xyz[b, :20] == centre).all(dim=-1).any()


@pytest.mark.parametrize('model_type', ['convnext', 'clip'])
def test_image_encoder_loads_a_local_transformers_model(model_type, tmp_path):
    if model_type == 'convnext':
        from transformers import ConvNextConfig, ConvNextModel
        ConvNextModel(ConvNextConfig(num_channels=3, hidden_sizes=[8, 16], depths=[1, 1],
                                     num_stages=2)).save_pretrained(tmp_path)
        width = 16
    else:
        from transformers import CLIPVisionConfig, CLIPVisionModel
        CLIPVisionModel(CLIPVisionConfig(hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2,
                                         image_size=32, patch_size=8)).save_pretrained(tmp_path)
        width = 16
    encoder = ImageEncoder(ImageEncoderConfig(kind='hf', path=str(tmp_path), image_size=32))
    assert encoder.out_dim == width
    assert not any(p.requires_grad for p in encoder.backbone.parameters())
    assert encoder(torch.rand(2, 3, 40, 40)).shape == (2, width)
