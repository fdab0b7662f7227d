"""Object, scene, image, instruction encoders and the text tokenizer: references, padding, I/O."""

import math

from leo_ros.model.config import (ImageConfig, LLMConfig, PolicyConfig, SceneConfig)
from leo_ros.model.image_encoder import image_to_array, ImageEncoder, resize_image
from leo_ros.model.object_encoder import (ball_query, farthest_point_sample, ObjectEncoder,
                                          ObjectEncoderConfig, SetAbstraction)
from leo_ros.model.spatial import SceneEncoder
from leo_ros.model.text_encoder import InstructionEncoder, TEXT_DIM
from leo_ros.model.text_tokenizer import load_tokenizer, TextTokenizer
from leo_ros.train.classifier import classifier_accuracy, train_classifier
import numpy as np
from policy_helpers import make_scene
import pytest
import torch

TINY_OBJECTS = {'kind': 'pointnet++', 'points': 64, 'centroids': (8, 4), 'group_size': (8, 8),
                'mlps': ((8, 8), (8, 16), (16, 32)), 'width': 16, 'embedding': 8}


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


def test_first_level_samples_centroids_from_the_candidates_only():
    level = SetAbstraction(8, 0.3, 8, 0, (8,), fps_candidates=20)
    xyz = random_points(2, 100, seed=4)[..., :3]
    centres, features = level(xyz, None)
    assert centres.shape == (2, 8, 3) and features.shape == (2, 8, 8)
    for b in range(2):
        for centre in centres[b]:
            assert (xyz[b, :20] == centre).all(dim=-1).any()


@pytest.mark.parametrize('kind', ['pointnet++', 'pointnet'])
def test_objects_are_encoded_independently(kind):
    encoder = ObjectEncoder(ObjectEncoderConfig(**{**TINY_OBJECTS, 'kind': kind})).eval()
    points = random_points(5, 64)                                         # (N, P, 6)
    sizes, scales = torch.rand(5, 3) + 0.1, torch.rand(5) + 0.1
    with torch.no_grad():
        embeddings, logits = encoder(points, sizes, scales)
        alone, _ = encoder(points[2:3], sizes[2:3], scales[2:3])
    assert embeddings.shape == (5, 8) and logits.shape == (5, len(encoder.config.categories))
    torch.testing.assert_close(embeddings[2:3], alone)


def test_object_encoder_embeds_labels_and_round_trips(tmp_path):
    encoder = ObjectEncoder(ObjectEncoderConfig(**TINY_OBJECTS))
    scene = make_scene(5)
    embeddings, probabilities = encoder.embed_tokens(scene)
    assert embeddings.shape == (5, 8)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
    labels, confidences = encoder.classify(scene)
    assert len(labels) == 5 and set(labels) <= set(encoder.config.categories)
    np.testing.assert_allclose(confidences, probabilities.max(1))
    encoder.save(tmp_path)
    loaded = ObjectEncoder.load(tmp_path)
    assert loaded.config == encoder.config
    np.testing.assert_array_equal(loaded.embed_tokens(scene)[0], embeddings)


def two_shapes(count=40, seed=0):
    """Small spheres (label 0) and large flat boxes (label 1), as the classifier reads them."""
    rng = np.random.default_rng(seed)
    points, sizes, labels = [], [], []
    for n in range(count):
        label = n % 2
        if label == 0:
            xyz = rng.normal(size=(64, 3))
            xyz /= np.linalg.norm(xyz, axis=1, keepdims=True)
            size = rng.uniform(0.08, 0.12, 3)
        else:
            xyz = rng.uniform(-1, 1, size=(64, 3)) * [1.0, 1.0, 0.1]
            size = rng.uniform(0.8, 1.2, 3) * [1.0, 1.0, 0.1]
        rgb = rng.uniform(-1, 1, size=(64, 3))
        points.append(np.concatenate([xyz, rgb], 1))
        sizes.append(size)
        labels.append(label)
    sizes = np.asarray(sizes, np.float32)
    return {'points': np.asarray(points, np.float32), 'sizes': sizes,
            'scales': np.linalg.norm(sizes, axis=1).astype(np.float32) / 2,
            'labels': np.asarray(labels, np.int64)}


def test_the_classifier_learns_categories():
    config = ObjectEncoderConfig(kind='pointnet', points=32, width=16, embedding=8)
    model = train_classifier(two_shapes(), config, steps=40, batch_size=16, lr=2e-2,
                             progress=False)
    assert not model.training
    assert classifier_accuracy(model, two_shapes(seed=1)) >= 0.9


def scene_inputs(count=4, seed=0, features=8 + 9):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(1, count, features, generator=generator),
            torch.randn(1, count, 3, generator=generator) * 2,
            torch.rand(1, count, 3, generator=generator) + 0.1,
            torch.randn(1, 5, TEXT_DIM, generator=generator),
            torch.randn(1, TEXT_DIM, generator=generator))


def run_scene(encoder, objects, centers, sizes, mask, text, pooled):
    tokens, raw, geometry = encoder.encode_scene(objects, centers, sizes, mask)
    text_mask = torch.ones(text.shape[:2], dtype=torch.bool)
    grounded, early = encoder.ground(raw, geometry, centers, sizes, mask, text, text_mask,
                                     pooled)
    return tokens, grounded, early


@pytest.mark.parametrize('options', [
    {},
    {'pair_values': False},
    {'pairwise_geometry': False, 'pair_values': False},
    {'named_geometry': False, 'subject_head': False, 'location': 'linear'},
    {'grounding_layers': 0, 'named_geometry': False, 'subject_head': False},
])
def test_padded_objects_change_no_token(options):
    encoder = SceneEncoder(SceneConfig(object_embedding=8, width=32, heads=4, **options)).eval()
    objects, centers, sizes, text, pooled = scene_inputs()
    padding = scene_inputs(3, seed=1)
    mask = torch.tensor([[True] * 4 + [False] * 3])
    with torch.no_grad():
        alone = run_scene(encoder, objects, centers, sizes, torch.ones(1, 4, dtype=torch.bool),
                          text, pooled)
        padded = run_scene(encoder, torch.cat([objects, padding[0] * 10], 1),
                           torch.cat([centers, padding[1] * 10], 1),
                           torch.cat([sizes, padding[2]], 1), mask, text, pooled)
    for one, other in zip(alone, padded):
        if one is None:
            assert other is None
            continue
        torch.testing.assert_close(other[:, :4], one, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('pairwise, values', [(True, True), (True, False), (False, False)])
def test_the_geometry_switches_build_their_layers(pairwise, values):
    encoder = SceneEncoder(SceneConfig(object_embedding=8, width=32, heads=4,
                                       pairwise_geometry=pairwise, pair_values=values))
    for layer in list(encoder.scene_layers) + list(encoder.grounding_layers):
        assert (layer.pair is not None) == pairwise
        assert (layer.pair_value is not None) == values
    assert encoder.scene_layers[0].cross is None and encoder.grounding_layers[0].cross is not None


def test_the_scene_tokens_read_no_text_and_the_grounded_tokens_do():
    encoder = SceneEncoder(SceneConfig(object_embedding=8, width=32, heads=4)).eval()
    objects, centers, sizes, text, pooled = scene_inputs()
    mask = torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        tokens, grounded, _ = run_scene(encoder, objects, centers, sizes, mask, text, pooled)
        other = run_scene(encoder, objects, centers, sizes, mask, -text, -pooled)
        moved = centers.clone()
        moved[0, 0] += 3.0
        far = run_scene(encoder, objects, moved, sizes, mask, text, pooled)
    assert torch.equal(other[0], tokens) and not torch.allclose(other[1], grounded)
    # the pairwise geometry: another object's place changes every token
    assert not torch.allclose(far[0][0, 1:], tokens[0, 1:])


@pytest.mark.parametrize('location', ['mlp', 'linear'])
def test_the_location_embedding_reads_log_or_linear_sizes(location):
    encoder = SceneEncoder(SceneConfig(object_embedding=8, width=32, heads=4, location=location))
    seen = []
    encoder.location.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    _, centers, sizes, _, _ = scene_inputs()
    encoder.geometry(centers, sizes)
    encoder.geometry(centers, sizes * 2)
    torch.testing.assert_close(seen[1][..., :3], centers)
    if location == 'mlp':    # doubling every size shifts the input by the same log 2
        torch.testing.assert_close(seen[1][..., 3:] - seen[0][..., 3:],
                                   torch.full_like(sizes, math.log(2)))
    else:
        torch.testing.assert_close(seen[1][..., 3:], 2 * seen[0][..., 3:])


def test_image_encoder_and_the_shared_resize():
    encoder = ImageEncoder(ImageConfig(image_size=(16, 12), channels=(4, 8)), 24)
    assert encoder(torch.rand(2, 3, 12, 16)).shape == (2, 24)
    image = np.random.default_rng(0).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    small = resize_image(image, (16, 12))                  # whole-factor: 4x4 block means
    assert small.shape == (12, 16, 3)
    np.testing.assert_array_equal(small[0, 0], image[:4, :4].reshape(-1, 3).mean(0).round())
    array = image_to_array(small)
    assert array.shape == (3, 12, 16) and array.dtype == np.float32
    assert -0.5 <= array.min() and array.max() <= 0.5


def test_the_instruction_encoder_caches_a_bounded_number(tmp_path):
    encoder = InstructionEncoder(max_tokens=6, cache_size=2)
    texts = ['Go to the red mug.', 'Describe the table.', 'Is there a box?']
    states = encoder.encode(texts)
    assert list(encoder.cache) == texts[1:]                      # least recently used goes
    for (tokens, pooled), text in zip(states, texts):
        assert tokens.dtype == torch.float16 and tokens.shape[1] == 384
        assert 2 <= tokens.shape[0] <= 6
        assert pooled.shape == (384,) and abs(float(pooled.norm()) - 1) < 1e-4
    again = encoder.encode([texts[0]])[0]      # recomputed (padded otherwise): the same
    torch.testing.assert_close(again[0], states[0][0], atol=2e-3, rtol=0)
    torch.testing.assert_close(again[1], states[0][1], atol=1e-4, rtol=0)
    assert list(encoder.cache) == [texts[2], texts[0]]
    long = encoder.encode(['one two three four five six seven eight nine ten'])[0][0]
    assert long.shape[0] == 6
    encoder.save_cache(tmp_path / 'cache')
    other = InstructionEncoder(max_tokens=6, cache_size=0)
    assert other.load_cache(tmp_path / 'cache') == 2
    assert torch.equal(other.cache[texts[0]][0], again[0])
    assert InstructionEncoder(max_tokens=7).load_cache(tmp_path / 'cache') == 0
    with pytest.raises(ValueError, match='cache_size'):
        InstructionEncoder(cache_size=-1)
    other.resize(1)                            # a serving node bounds a training cache
    assert list(other.cache) == sorted(encoder.cache)[-1:]   # the newest of those loaded
    with pytest.raises(ValueError, match='cache_size'):
        other.resize(-1)


def test_the_bpe_round_trips_and_saves(tmp_path):
    tokenizer = TextTokenizer.train(['turn left at the sofa', 'the lamp is on the desk'] * 20,
                                    300)
    ids = tokenizer.encode(' the lamp is on the desk')
    assert tokenizer.decode(ids) == ' the lamp is on the desk'
    assert len(ids) < len(' the lamp is on the desk')      # merges learned
    assert tokenizer.decode(tokenizer.encode('a zebra!')) == 'a zebra!'    # bytes cover all
    assert None not in (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id)
    tokenizer.save(tmp_path / 'tok')
    loaded = load_tokenizer(tmp_path / 'tok')
    assert loaded.fingerprint() == tokenizer.fingerprint() and len(loaded) == len(tokenizer)
    assert loaded.encode(' the lamp') == tokenizer.encode(' the lamp')
    other = TextTokenizer.train(['something else'] * 20, 300)
    assert other.fingerprint() != tokenizer.fingerprint()
    with pytest.raises(ValueError, match='tokenizer directory missing'):
        load_tokenizer(tmp_path / 'none')


@pytest.mark.parametrize('factory, match', [
    (lambda: ObjectEncoderConfig(kind='voxels'), 'kind'),
    (lambda: ObjectEncoderConfig(radii=(0.2, -1)), 'radii'),
    (lambda: SceneConfig(width=30, heads=4), 'width'),
    (lambda: SceneConfig(location='fourier'), 'location'),
    (lambda: SceneConfig(grounding_loss=-0.5), 'grounding_loss'),
    (lambda: SceneConfig(pairwise_geometry=False), 'pair_values needs pairwise_geometry'),
    (lambda: SceneConfig(grounding_loss=0.0), 'named_geometry needs grounding_loss'),
    (lambda: SceneConfig(grounding_layers=0), 'named_geometry needs grounding_layers'),
    (lambda: SceneConfig(named_geometry=False), 'subject_head needs named_geometry'),
    (lambda: ImageConfig(image_size=(2, 24)), 'image_size'),
    (lambda: ImageConfig(channels=()), 'channels'),
    (lambda: LLMConfig(dtype='int8'), 'dtype'),
    (lambda: LLMConfig(source=''), 'source'),
    (lambda: LLMConfig(bpe_vocab_size=100), 'bpe_vocab_size'),
    (lambda: LLMConfig(hidden_size=30, heads=4), 'hidden_size'),
    (lambda: LLMConfig(lora_dropout=1.0), 'lora_dropout'),
    (lambda: LLMConfig(lora_targets=()), 'lora_targets'),
    (lambda: PolicyConfig(action_mode='fast'), 'action_mode'),
    (lambda: PolicyConfig(max_answer_tokens=1), 'max_answer_tokens'),
    (lambda: PolicyConfig.from_dict({'scene': {'spatial_layers': 2}}), 'spatial_layers'),
    (lambda: PolicyConfig.from_dict({'text': {}}), 'text'),
])
def test_configs_name_bad_values(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_policy_config_round_trips_through_a_dict():
    config = PolicyConfig(scene=SceneConfig(width=64, pair_values=False),
                          image=ImageConfig(image_size=(16, 12)),
                          llm=LLMConfig(source='smollm2-135m', lora_targets='attention'))
    assert config.llm.lora_targets == ('attention',)
    data = config.to_dict()
    assert data['scene']['width'] == 64 and data['llm']['source'] == 'smollm2-135m'
    assert PolicyConfig.from_dict(data) == config
    assert LLMConfig().built_here and not config.llm.built_here
