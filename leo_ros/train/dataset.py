"""
Training examples from the data engine's datasets (no ROS).

Every sample of ``leo-data`` becomes a ``leo_ros.model.batch.Example``: the scene's object
features seen from the sample's situation, the ego-view image, the instruction (the LM's tokens
and MiniLM's word pieces) and the target answer in the policy's token space. Targets by family:

- text families (object/scene captions, QA): the answer's text;
- ``refer`` (stage 1, made here from object captions): a referring expression -> ``<obj_k>``;
- ``nav``: ``<nav_goal>`` + payload; ``pick_place``: ``<pick_place>`` + payload;
- ``plan``: the plan's text, then ``<nav_goal>`` + payload and ``<pick_place>`` + payload;
- ``refusal``: ``<refuse>`` and the sentence that says what is not there.

Every example but scene captions also says which of its object tokens the answer rests on
(``target_ids``: a size question's winner, the counted objects, an action's objects) and which
the text names (``mentioned_ids``: also anchors and a size question's loser), for the grounding
loss, where the text is about one object which one that is (``subject_of``), and what the
instruction asks for (its intent).

The payload is ``<obj_k>`` tokens (grounded) or coordinate tokens of the expert's action in the
robot frame (bins / rvq).
"""

from leo_ros.actions.grounded import GroundedTokenizer, object_token
from leo_ros.actions.types import action_from_dict
from leo_ros.data.engine import family_of
from leo_ros.data.shards import load_observed, load_scene, read_samples
from leo_ros.data.templates import split_template
from leo_ros.model.batch import Example
from leo_ros.model.features import action_to_robot_frame, object_features
from leo_ros.model.prompt import FAMILY_INTENTS, format_answer, INTENTS, REFUSE
import numpy as np

#: families of each stage (``refer`` is derived from object captions)
STAGE1_FAMILIES = ('object_caption', 'refer', 'scene_caption')
STAGE2_FAMILIES = ('qa', 'nav', 'pick_place', 'plan', 'refusal')


class SceneCache:
    """
    Scene archives of a dataset with their classifier embeddings, loaded once each.

    A scene is a dict with ``tokens``, ``embeddings``, ``index`` (world id -> row) and
    ``observed``: one such view (``tokens``, ``embeddings``, ``index``) per situation looked
    around from (empty without observed tokens).

    :param observed: stamp of the observed-token archives to read, or None for none
    """

    def __init__(self, root, split, classifier, observed=None):
        self.root, self.split, self.classifier = root, split, classifier
        self.observed = observed
        self.scenes = {}

    def get(self, seed) -> dict:
        if seed not in self.scenes:
            scene = load_scene(self.root, self.split, seed)
            scene.update(self._view(scene['tokens']))
            sets = [] if self.observed is None else \
                load_observed(self.root, self.split, seed, self.observed)
            scene['observed'] = [self._view(tokens) for tokens in sets]
            self.scenes[seed] = scene
        return self.scenes[seed]

    def _view(self, tokens) -> dict:
        embeddings, _ = self.classifier.embed_tokens(tokens)
        return {'tokens': tokens, 'embeddings': embeddings,
                'index': {int(i): k for k, i in enumerate(tokens.ids)}}


def choose_view(scene, sample, family, fraction, rng) -> dict:
    """
    Return the token view an example reads.

    That is the scene's mesh-sampled tokens, or (with probability ``fraction``) those
    perception kept when looking around from the sample's situation, if every object the
    sample rests on (``mentioned_ids``; ``target_ids`` in datasets written before it) was seen
    there.

    Manipulation samples stand at their own base pose; they read a random looked-around
    situation. Scene captions list every object, so they keep the mesh-sampled tokens.
    """
    views = scene['observed']
    if not views or family == 'scene_caption' or rng.random() >= fraction:
        return scene
    number = sample['situation_index']
    view = views[number] if number < len(views) else views[int(rng.integers(len(views)))]
    needed = sample.get('mentioned_ids', sample.get('target_ids', []))
    if all(int(i) in view['index'] for i in needed):
        return view
    return scene


def reference_of(sample, templates) -> str:
    """
    Recover the referring expression ``{target}`` from an object-caption instruction.

    :param templates: the ``Templates`` the dataset was written with
    :return: the expression, or '' when the template cannot be matched
    """
    kind, index, _ = sample['template'].split('/')
    phrasing = templates.kinds[kind]['instructions'][int(index)]
    parts = split_template(sample['instruction'], phrasing, greedy=True)
    return parts[1] if parts and len(parts) == 3 else ''


def target_answer(sample, family, scene, action_tokenizer) -> str:
    """Return the target of a sample: text and special tokens (see the module docstring)."""
    index = scene['index']
    if family in ('object_caption', 'scene_caption', 'qa'):
        return sample['answer']
    if family == 'refusal':
        return format_answer(REFUSE) + ' ' + sample['answer']
    if family == 'refer':
        return object_token(index[sample['target_ids'][0]])
    grounded = isinstance(action_tokenizer, GroundedTokenizer)
    situation = sample['situation']
    pose = (situation['x'], situation['y'], situation['yaw'])
    actions = [action_from_dict(a) for a in sample['actions']]
    if family == 'nav':
        if grounded:
            return format_answer('', ['<nav_goal>', object_token(index[sample['target_ids'][0]])])
        return format_answer('', action_tokenizer.encode(action_to_robot_frame(actions[0], pose)))
    if family == 'pick_place':
        if grounded:
            return format_answer('', ['<pick_place>'] + [object_token(index[i])
                                                         for i in sample['target_ids'][:2]])
        return format_answer('', action_tokenizer.encode(action_to_robot_frame(actions[0], pose)))
    if family == 'plan':
        if grounded:
            target, destination = (index[i] for i in sample['target_ids'][:2])
            return format_answer(sample['answer'], [
                '<nav_goal>', object_token(target), '<pick_place>', object_token(target),
                object_token(destination)])
        nav = [a for a in actions if a.kind == 'nav_goal'][0]
        pick = [a for a in actions if a.kind == 'pick_place'][0]
        # the pick-and-place is expressed from where the navigation goal leaves the robot
        return format_answer(sample['answer'], action_tokenizer.encode(
            action_to_robot_frame(nav, pose)) + action_tokenizer.encode(
            action_to_robot_frame(pick, (nav.x, nav.y, nav.yaw))))
    raise ValueError(f'unknown family {family!r}')


def intent_of(sample, family) -> int:
    """Return the index (``INTENTS``) of what a sample's instruction asks for."""
    if family == 'refusal':
        family = family_of(sample['base_kind'])
    return INTENTS.index(FAMILY_INTENTS[family])


def answer_object_ids(kind, target_ids, answer) -> list:
    """
    Return the ids of the objects an answer rests on (the grounding loss's first column).

    That is ``target_ids`` but for two question kinds whose targets are only named: a relation
    question gives its subject when the answer is yes and nothing when it is no (so the mark is
    the relation's truth, read at the subject); a support question gives the support
    (``target_ids`` lists the object first), the object its answer names.
    """
    targets = [int(i) for i in target_ids]
    if kind == 'qa_relation':
        return targets[:1] if str(answer).lower().startswith('yes') else []
    if kind == 'qa_support':
        return targets[1:]
    return targets


#: kinds whose first target is the object the text is about: the subject of "is the mug left
#: of the box", the object to fetch, the object described (size questions list their winner,
#: counts the counted objects: no subject)
SUBJECT_KINDS = ('object_caption', 'qa_category', 'qa_color', 'qa_support', 'qa_relation',
                 'nav', 'pick_place', 'plan')


def subject_of(sample, family, view) -> int:
    """Return the view's row of the object the text is about, or -1 (none or not seen)."""
    targets = sample.get('target_ids', [])
    if not targets or sample.get('kind', family) not in SUBJECT_KINDS:
        return -1
    return view['index'].get(int(targets[0]), -1)


def grounding_of(sample, family, view) -> np.ndarray:
    """
    Return (K, 2) marks of the view's objects for the policy's grounding loss.

    Column 0 marks the objects the answer rests on (``answer_object_ids``), column 1 every
    object the text names (``mentioned_ids``; the targets in datasets written before it).

    :return: the marks, or None for scene captions (they name every object)
    """
    if family == 'scene_caption':
        return None
    targets = answer_object_ids(sample.get('kind', ''), sample.get('target_ids', []),
                                sample.get('answer', ''))
    index = view['index']
    marks = np.zeros((len(index), 2), np.float32)
    named = sample.get('mentioned_ids', sample.get('target_ids', []))
    for column, ids in enumerate((targets, named)):
        rows = [index[int(i)] for i in ids if int(i) in index]
        marks[rows, column] = 1.0
    return marks


def load_records(root, split, templates, refer_phrasings, rng) -> list:
    """
    Read a split's samples as records ``(sample, family, instruction)``.

    Object captions also yield a ``refer`` record whose instruction is one of
    ``refer_phrasings`` filled with the caption's referring expression.
    """
    records = []
    for sample in read_samples(root, split):
        family = sample['family']
        records.append((sample, family, sample['instruction']))
        if family == 'object_caption':
            reference = reference_of(sample, templates)
            if reference:
                phrasing = refer_phrasings[int(rng.integers(len(refer_phrasings)))]
                instruction = phrasing.format(target=reference)
                records.append((sample, 'refer', instruction[:1].upper() + instruction[1:]))
    return records


def build_examples(records, scenes: SceneCache, text_encoder, policy, progress=True,
                   observed_fraction=0.0, seed=0) -> list:
    """
    Turn records into Examples (MiniLM states computed in batches and cached).

    :param policy: the ``LeoPolicy`` (its tokenizer, token space, action tokenizer and image
        size)
    :param observed_fraction: share of examples that read observed tokens (:func:`choose_view`)
    :param seed: seed of that choice
    """
    from tqdm import tqdm
    text_encoder.encode([r[2] for r in records], progress=progress)
    examples = []
    rng = np.random.default_rng([seed, 7])
    config = policy.config
    eos, limit = policy.tokenizer.eos_id, config.max_answer_tokens
    for sample, family, instruction in tqdm(records, desc='examples', disable=not progress):
        scene = scenes.get(sample['scene_seed'])
        view = choose_view(scene, sample, family, observed_fraction, rng)
        situation = sample['situation']
        pose = (situation['x'], situation['y'], situation['yaw'])
        features, centers = object_features(view['embeddings'], view['tokens'], pose)
        answer = target_answer(sample, family, view, policy.action_tokenizer)
        ids = policy.space.encode(answer, policy.tokenizer)[:limit - 1] + [eos]
        states, pooled = text_encoder.encode([instruction])[0]
        image = None
        if config.image.use_image and scene['ego_images'] is not None:
            image = policy.image_array(scene['ego_images'][sample['situation_index']])
        examples.append(Example(
            objects=features, centers=centers, sizes=np.asarray(view['tokens'].sizes, np.float32),
            text=states, text_pooled=pooled,
            instruction_ids=policy.instruction_ids(instruction), image=image,
            answer=np.asarray(ids, np.int64), family=family,
            grounding=grounding_of(sample, family, view), subject=subject_of(sample, family, view),
            intent=intent_of(sample, family)))
    return examples
