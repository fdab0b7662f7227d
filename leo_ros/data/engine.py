"""
The instruction data engine (no ROS): LEO-style samples from procedural scene graphs.

For every scene a *proposer* writes candidate samples from templates, the way LEO's pipeline
prompts an LLM with a scene graph: it picks targets, phrases references loosely (a bare
category may fit several objects) and answers with cheap heuristics (centre offsets, placement
records, the largest extent). A *refinement* pass then checks every candidate against the
geometric scene graph and the world, and drops ambiguous references, wrong answers and expert
demonstrations that fail when executed. Drops are counted by reason.
"""

from collections import Counter
from dataclasses import dataclass, field
import math

from leo_ros.actions.types import NavGoal, to_dict
from leo_ros.data import scene_questions
from leo_ros.data.refusals import HELDOUT_NOUNS, is_absent, propose_refusal, TRAIN_NOUNS
from leo_ros.data.templates import FAMILY_OF_KIND, KINDS, Templates
from leo_ros.sim import expert
from leo_ros.sim.graph import DIRECTIONS, Reference
from leo_ros.sim.scene import (COLORS, FLOOR_ID, FURNITURE_CATEGORIES, SMALL_CATEGORIES,
                               SUPPORT_CATEGORIES)
from leo_ros.sim.world import Task, World, WorldConfig
from leo_ros.vocabulary import plural
import numpy as np

QA_KINDS = KINDS['qa']
#: Ways the loose proposer names an object: 'the mug', 'the red mug', 'the mug left of the
#: box', 'the largest mug'.
REFERENCE_FORMS = ('category', 'color', 'relation', 'superlative')
DEFAULT_REFERENCE_FORMS = {'category': 0.25, 'color': 0.4, 'relation': 0.27,
                           'superlative': 0.08}


def mentioned_ids(graph, candidate) -> list:
    """
    Return every object a candidate's text or answer rests on, sorted.

    That is its targets, the objects its references denote and their anchors (a size question's
    loser, the table of 'the mug on the table'): a view of the scene that misses one of them
    would not support the sample.
    """
    ids = {int(i) for i in candidate.get('target_ids', [])}
    pending = list(candidate.get('refs', []))
    while pending:
        reference, target = pending.pop()
        if target is not None:
            ids.add(int(target))
        if reference.anchor is not None:
            anchors = graph.resolve(reference.anchor)
            ids.update(int(i) for i in anchors)
            pending.append((reference.anchor, None))
    return sorted(ids)


def family_of(kind) -> str:
    """Return the family of a sample kind ('refusal' for refusals)."""
    return 'refusal' if kind == 'refusal' else FAMILY_OF_KIND[kind]


def _checked_weights(name, weights, known) -> dict:
    """Return ``weights`` as a dict after checking its keys are ``known`` and values >= 0."""
    weights = dict(weights)
    unknown = sorted(set(weights) - set(known))
    if unknown:
        raise ValueError(f'EngineConfig.{name} has unknown keys {unknown}; known: {list(known)}')
    bad = {k: w for k, w in weights.items() if not w >= 0}
    if bad:
        raise ValueError(f'EngineConfig.{name} must be >= 0, got {bad}')
    return weights


NUMBERS = ('no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')


def counted(counts) -> list:
    """
    Return noun phrases for counted things, in sorted order.

    :param counts: {category: n} or {(colour, category): n}
    :return: ['a red mug', 'two blue bowls', '3 chairs', ...] (numbers up to nine as words)
    """
    phrases = []
    for key, count in sorted(counts.items()):
        *colour, category = key if isinstance(key, tuple) else (key,)
        words = ' '.join([*colour, category if count == 1 else plural(category)])
        number = 'a' if count == 1 else NUMBERS[count] if count < len(NUMBERS) else str(count)
        phrases.append(f'{number} {words}')
    return phrases


def listing(phrases) -> str:
    """Join phrases as English: 'a, b and c'."""
    return ', '.join(phrases[:-1]) + (' and ' if len(phrases) > 1 else '') + phrases[-1]


@dataclass
class EngineConfig:
    """
    How many samples of each kind one scene yields (before refinement) and what is stored.

    :param situations: robot poses per scene that text samples are situated in
    :param object_captions: object caption candidates per scene
    :param scene_captions: scene caption candidates per scene
    :param qa: question-answer candidates per scene
    :param nav: navigation episode candidates per scene
    :param pick_place: manipulation episode candidates per scene
    :param plan: multi-step plan candidates per scene
    :param refusals: candidates per scene whose instruction names something absent
        (``leo_ros.data.refusals``)
    :param qa_kind_weights: relative frequency of each question kind (``qa_relation``: 3, ...);
        kinds left out weigh 1; None draws the kinds uniformly
    :param reference_form_weights: relative frequency of each way of naming an object
        (``REFERENCE_FORMS``: plain category, with colour, with a relation, superlative);
        forms left out weigh 0; None uses ``DEFAULT_REFERENCE_FORMS`` (what evaluation asks)
    :param points_per_object: points per object in the stored SceneTokens
    :param image_size: (width, height) of the stored ego-view images; (0, 0) stores none
    :param world: the world the scenes come from
    """

    situations: int = 3
    object_captions: int = 6
    scene_captions: int = 1
    qa: int = 14
    nav: int = 5
    pick_place: int = 4
    plan: int = 2
    refusals: int = 0
    qa_kind_weights: dict = None
    reference_form_weights: dict = None
    points_per_object: int = 1024
    image_size: tuple = (224, 168)
    world: WorldConfig = field(default_factory=WorldConfig)

    def __post_init__(self):
        for name in ('situations', 'object_captions', 'scene_captions', 'qa', 'nav',
                     'pick_place', 'plan', 'refusals'):
            if getattr(self, name) < 0:
                raise ValueError(f'EngineConfig.{name} must be >= 0, got {getattr(self, name)}')
        if self.situations < 1:
            raise ValueError(f'EngineConfig.situations must be >= 1, got {self.situations}')
        if self.points_per_object < 1:
            raise ValueError(f'EngineConfig.points_per_object must be >= 1, '
                             f'got {self.points_per_object}')
        width, height = self.image_size
        if (width, height) != (0, 0) and (width < 2 or height < 2):
            raise ValueError(f'EngineConfig.image_size must be (0, 0) or at least 2x2, '
                             f'got {self.image_size}')
        if self.qa_kind_weights is not None:
            weights = _checked_weights('qa_kind_weights', self.qa_kind_weights, QA_KINDS)
            if not any(weights.get(k, 1) > 0 for k in QA_KINDS):
                raise ValueError(f'EngineConfig.qa_kind_weights leaves no kind to ask: '
                                 f'{weights}')
            self.qa_kind_weights = weights
        if self.reference_form_weights is not None:
            forms = _checked_weights('reference_form_weights', self.reference_form_weights,
                                     REFERENCE_FORMS)
            if sum(forms.values()) <= 0:
                raise ValueError(f'EngineConfig.reference_form_weights leaves no form to name '
                                 f'objects by: {forms}')
            self.reference_form_weights = forms

    def reference_form_probabilities(self) -> list:
        """Return the probability of each of ``REFERENCE_FORMS``."""
        forms = self.reference_form_weights or DEFAULT_REFERENCE_FORMS
        weights = np.array([float(forms.get(f, 0.0)) for f in REFERENCE_FORMS])
        return list(weights / weights.sum())


@dataclass
class SceneResult:
    """What one scene gave: kept samples, drop counts, situations, tokens and images."""

    seed: int
    samples: list
    proposed: Counter
    dropped: Counter
    situations: list
    world: World


class DataEngine:
    """
    Turn scene seeds into refined samples.

    :param config: counts and storage options
    :param templates: phrasings (default: the package's templates)
    """

    def __init__(self, config: EngineConfig = None, templates: Templates = None):
        self.config = config or EngineConfig()
        self.templates = templates or Templates.load()

    # ---- per scene
    def scene(self, seed: int) -> SceneResult:
        """Propose and refine the samples of one scene."""
        cfg = self.config
        rng = np.random.default_rng([int(seed), 1])
        world = World(seed, cfg.world)
        situations = [world.robot_pose]
        while len(situations) < cfg.situations:
            situations.append(world.sample_free_pose(rng))
        proposed, dropped, samples = Counter(), Counter(), []
        home = world.snapshot()

        def keep(candidate, situation_index):
            proposed[candidate['kind']] += 1
            reason = self.refine(world, candidate)
            if reason:
                dropped[reason] += 1
                return
            samples.append(self._sample(world, seed, len(samples), candidate,
                                        situations[situation_index], situation_index))

        plan = [('object_caption', cfg.object_captions), ('scene_caption', cfg.scene_captions),
                ('qa', cfg.qa), ('nav', cfg.nav), ('pick_place', cfg.pick_place),
                ('plan', cfg.plan), ('refusal', cfg.refusals)]
        for family, count in plan:
            for _ in range(count):
                index = int(rng.integers(len(situations)))
                world.restore(home)
                world.set_robot_pose(*situations[index])
                candidate = self.propose(world, family, rng)
                if candidate is None:
                    proposed[family] += 1
                    dropped['no_candidate'] += 1
                    continue
                if candidate.get('situation') is not None:  # manipulation: its own base pose
                    situations.append(candidate['situation'])
                    index = len(situations) - 1
                keep(candidate, index)
        world.restore(home)
        world.set_robot_pose(*situations[0])
        return SceneResult(seed, samples, proposed, dropped, situations, world)

    def _sample(self, world, seed, number, candidate, situation, situation_index):
        return {
            'id': f'{seed:08d}-{number:03d}',
            'family': family_of(candidate['kind']),
            'kind': candidate['kind'],
            'scene_seed': int(seed),
            'situation': {'x': round(situation[0], 4), 'y': round(situation[1], 4),
                          'yaw': round(situation[2], 4)},
            'situation_index': situation_index,
            'instruction': candidate['instruction'],
            'answer': candidate['answer'],
            'actions': [to_dict(a) for a in candidate.get('actions', [])],
            'target_ids': [int(i) for i in candidate.get('target_ids', [])],
            'mentioned_ids': mentioned_ids(world.graph, candidate),
            'template': candidate['template'],
            **({'base_kind': candidate['base_kind'], 'form': candidate['form']}
               if candidate['kind'] == 'refusal' else {}),
        }

    # ---- proposing
    def propose(self, world, family, rng, nouns=TRAIN_NOUNS):
        """
        Return one candidate of a family (a dict), or None when the scene offers none.

        :param nouns: absent things refusals may name (``leo_ros.data.refusals``)
        """
        graph = world.graph
        if family == 'refusal':
            return propose_refusal(self.templates, graph, rng, nouns)
        if family == 'qa':
            kinds = [k for k in QA_KINDS if self.templates.has(k)]
            weights = self.config.qa_kind_weights
            if weights is None:
                kind = kinds[int(rng.integers(len(kinds)))]
            else:
                # Geometry questions (relations, sizes) need more examples than lookups.
                p = np.array([float(weights.get(k, 1)) for k in kinds])
                if p.sum() <= 0:
                    return None
                kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
        else:
            kind = family
        if not self.templates.has(kind):
            return None
        if kind in scene_questions.PROPOSERS:
            candidate = scene_questions.PROPOSERS[kind](self, world, graph, rng)
        else:
            candidate = getattr(self, f'_propose_{kind}')(world, graph, rng)
        if candidate is None:
            return None
        slots = {**candidate.pop('slots')}
        instruction, answer, template = self.templates.fill(kind, rng, **slots)
        candidate.update(kind=kind, instruction=instruction, answer=answer, template=template)
        return candidate

    def propose_reference(self, graph, target, rng) -> Reference:
        """Phrase a reference to an object the way a loose annotator would (may be ambiguous)."""
        obj = graph.scene.object(target)
        form = rng.choice(REFERENCE_FORMS, p=self.config.reference_form_probabilities())
        if form == 'category':
            return Reference(obj.category)
        if form == 'superlative':
            same = graph.select(obj.category)
            volumes = [graph.scene.object(i).size for i in same]
            extents = [max(v) for v in volumes]  # the proposer's guess: the longest side
            which = 'largest' if extents[same.index(target)] == max(extents) else 'smallest'
            return Reference(obj.category, superlative=which)
        color = obj.color if form == 'color' or rng.random() < 0.5 else None
        if form == 'relation':
            relation = self._loose_relation(graph, target, rng)
            if relation is not None:
                name, anchor = relation
                anchor_obj = graph.scene.object(anchor)
                anchor_color = anchor_obj.color if rng.random() < 0.4 else None
                return Reference(obj.category, color, relation=name,
                                 anchor=Reference(anchor_obj.category, anchor_color))
        return Reference(obj.category, color)

    def careful_reference(self, graph, target, rng, tries=4) -> Reference:
        """
        Phrase a reference for an action episode: redraw a few times to find a unique one.

        The last draw is returned even when it is ambiguous; refinement then drops it.
        """
        for _ in range(tries):
            reference = self.propose_reference(graph, target, rng)
            if graph.is_unique(reference, target):
                break
        return reference

    def _loose_relation(self, graph, target, rng):
        """Pick a relation of the target the proposer believes: placement record or offsets."""
        obj = graph.scene.object(target)
        options = []
        if obj.support_id != FLOOR_ID:
            options.append(('on', obj.support_id))
        for other in graph.ids:
            if other == target:
                continue
            other_obj = graph.scene.object(other)
            distance = math.dist((obj.x, obj.y), (other_obj.x, other_obj.y))
            if other_obj.category in FURNITURE_CATEGORIES and distance < 1.2 and \
                    other != obj.support_id:
                options.append(('near', other))
            if distance < 1.5 and other_obj.category in SMALL_CATEGORIES:
                forward, left = graph.observer_offset(target, other)
                # Loose: the dominant axis, no margin (refinement applies the margin).
                if abs(left) >= abs(forward):
                    options.append(('left of' if left > 0 else 'right of', other))
                else:
                    options.append(('behind' if forward > 0 else 'in front of', other))
        if not options:
            return None
        return options[int(rng.integers(len(options)))]

    def _pick(self, ids, rng):
        return int(ids[int(rng.integers(len(ids)))]) if len(ids) else None

    def _pick_related(self, graph, rng):
        """Return (target, relation, anchor) of a random object with a loose relation, or None."""
        target = self._pick(graph.ids, rng)
        relation = self._loose_relation(graph, target, rng)
        return None if relation is None else (target, *relation)

    def _propose_object_caption(self, world, graph, rng):
        target = self._pick(graph.ids, rng)
        obj = graph.scene.object(target)
        reference = self.propose_reference(graph, target, rng)
        support = self._support_phrase(graph, obj.support_id)
        return {'slots': {'target': reference.text(), 'color': obj.color,
                          'category': obj.category, 'support': support},
                'refs': [(reference, target)], 'target_ids': [target],
                'claim': ('caption', target, obj.color, obj.category, obj.support_id)}

    def _support_phrase(self, graph, support_id):
        if support_id == FLOOR_ID:
            return 'the floor'
        support = graph.scene.object(support_id)
        return f'the {support.color} {support.category}'

    def _propose_scene_caption(self, world, graph, rng):
        # What the object tokens show: categories with counts, then what stands on up to three
        # supports (the room's size is not in the tokens, so the caption does not guess it).
        counts = Counter(o.category for o in graph.scene.objects.values())
        sentences = [f'The room has {listing(counted(counts))}.']
        claims = []
        for support in sorted(graph.scene.objects.values(), key=lambda o: o.id):
            items = [o for o in graph.scene.objects.values() if o.support_id == support.id]
            if not items or support.category not in SUPPORT_CATEGORIES:
                continue
            names = Counter((o.color, o.category) for o in items)
            sentences.append(f'The {support.color} {support.category} holds '
                             f'{listing(counted(names))}.')
            claims += [(o.id, support.id) for o in items]
            if len(sentences) >= 4:
                break
        return {'slots': {'summary': ' '.join(sentences)}, 'refs': [], 'target_ids': [],
                'claim': ('summary', dict(counts), claims)}

    def _propose_qa_count(self, world, graph, rng):
        categories = sorted({o.category for o in graph.scene.objects.values()})
        category = categories[int(rng.integers(len(categories)))]
        count = sum(o.category == category for o in graph.scene.objects.values())
        return {'slots': {'categories': plural(category), 'count': str(count)}, 'refs': [],
                'target_ids': graph.select(category), 'claim': ('count', category, count)}

    def _propose_qa_color(self, world, graph, rng):
        target = self._pick(graph.ids, rng)
        reference = self.propose_reference(graph, target, rng)
        color = graph.scene.object(target).color
        return {'slots': {'target': reference.text(), 'answer': color},
                'refs': [(reference, target)], 'target_ids': [target],
                'claim': ('color', target, color)}

    def _propose_qa_category(self, world, graph, rng):
        related = self._pick_related(graph, rng)
        if related is None:
            return None
        target, name, anchor = related
        obj = graph.scene.object(target)
        reference = Reference(obj.category, obj.color, relation=name,
                              anchor=Reference(graph.scene.object(anchor).category))
        return {'slots': {'color': obj.color, 'relation': name,
                          'anchor': reference.anchor.text(), 'answer': obj.category},
                'refs': [(reference, target)], 'target_ids': [target],
                'claim': ('category', target, obj.category)}

    def _propose_qa_existence(self, world, graph, rng):
        category = SMALL_CATEGORIES[int(rng.integers(len(SMALL_CATEGORIES)))]
        colors = list(COLORS)
        color = colors[int(rng.integers(len(colors)))]
        present = any(o.category == category and o.color == color
                      for o in graph.scene.objects.values())
        if not present and rng.random() < 0.5:  # balance yes and no
            existing = graph.scene.small_objects()
            if existing:
                obj = existing[int(rng.integers(len(existing)))]
                category, color, present = obj.category, obj.color, True
        return {'slots': {'color': color, 'category': category,
                          'answer': 'yes' if present else 'no'},
                'refs': [], 'target_ids': graph.select(category, color),
                'claim': ('exists', category, color, present)}

    def _propose_qa_support(self, world, graph, rng):
        small = [o.id for o in graph.scene.small_objects()]
        target = self._pick(small, rng)
        if target is None:
            return None
        reference = self.propose_reference(graph, target, rng)
        support_id = graph.scene.object(target).support_id
        return {'slots': {'target': reference.text(),
                          'answer': self._support_phrase(graph, support_id)},
                'refs': [(reference, target)], 'target_ids': [target, support_id],
                'claim': ('support', target, support_id)}

    def _propose_qa_relation(self, world, graph, rng):
        related = self._pick_related(graph, rng)
        if related is None:
            return None
        target, name, anchor = related
        truth = True
        if rng.random() < 0.5 and name in DIRECTIONS:  # ask the opposite: answer no
            name = {'left of': 'right of', 'right of': 'left of', 'in front of': 'behind',
                    'behind': 'in front of'}[name]
            truth = False
        reference = self.propose_reference(graph, target, rng)
        anchor_ref = Reference(graph.scene.object(anchor).category,
                               graph.scene.object(anchor).color)
        return {'slots': {'target': reference.text(), 'relation': name,
                          'anchor': anchor_ref.text(), 'answer': 'yes' if truth else 'no'},
                'refs': [(reference, target), (anchor_ref, anchor)],
                'target_ids': [target, anchor], 'claim': ('relation', target, name, anchor, truth)}

    def _propose_qa_size(self, world, graph, rng):
        small = [o.id for o in graph.scene.small_objects()]
        if len(small) < 2:
            return None
        first, second = (int(i) for i in rng.choice(small, size=2, replace=False))
        a, b = graph.scene.object(first), graph.scene.object(second)
        winner = first if max(a.size) >= max(b.size) else second  # the proposer's heuristic
        refs = [Reference(a.category, a.color), Reference(b.category, b.color)]
        answer = refs[0].text() if winner == first else refs[1].text()
        return {'slots': {'target': refs[0].text(), 'other': refs[1].text(), 'answer': answer},
                'refs': [(refs[0], first), (refs[1], second)], 'target_ids': [winner],
                'claim': ('larger', first, second, winner)}

    def _propose_nav(self, world, graph, rng):
        target = self._pick(graph.ids, rng)
        reference = self.careful_reference(graph, target, rng)
        goal = expert.nav_goal(world, target)
        steps = expert.nav_steps(world, target, goal) if goal is not None else None
        return {'slots': {'target': reference.text()}, 'refs': [(reference, target)],
                'target_ids': [target], 'actions': [goal] + (steps or []) if goal else [],
                'claim': ('nav', target, goal, steps)}

    def _manipulation(self, world, graph, rng, start):
        small = [o.id for o in graph.scene.small_objects()]
        target = self._pick(small, rng)
        if target is None:
            return None
        current = graph.support(target)
        obj = graph.scene.object(target)
        destinations = sorted((o for o in graph.scene.objects.values()
                               if o.category in SUPPORT_CATEGORIES
                               and o.id not in (target, current)),
                              key=lambda o: math.dist((o.x, o.y), (obj.x, obj.y)))
        # One of the three nearest: a single arm's reach usually covers pick and place.
        destination = self._pick([o.id for o in destinations[:3]], rng)
        if destination is None:
            return None
        solution = expert.pick_place(world, target, destination, rng, start=start)
        reference = self.careful_reference(graph, target, rng)
        dest_obj = graph.scene.object(destination)
        dest_ref = Reference(dest_obj.category)
        if not graph.is_unique(dest_ref, destination):
            dest_ref = Reference(dest_obj.category, dest_obj.color)
        return target, destination, reference, dest_ref, solution

    def _propose_pick_place(self, world, graph, rng):
        made = self._manipulation(world, graph, rng, start=None)
        if made is None:
            return None
        target, destination, reference, dest_ref, solution = made
        base, action = solution if solution else (None, None)
        return {'slots': {'target': reference.text(), 'destination': dest_ref.text()},
                'refs': [(reference, target), (dest_ref, destination)],
                'target_ids': [target, destination], 'actions': [action] if action else [],
                'situation': base, 'claim': ('pick_place', target, destination, base, action)}

    def _propose_plan(self, world, graph, rng):
        made = self._manipulation(world, graph, rng, start=None)
        if made is None:
            return None
        target, destination, reference, dest_ref, solution = made
        base, action = solution if solution else (None, None)
        goal = NavGoal(*base) if base is not None else None
        obj = graph.scene.object(target)
        plan = (f'1. Go to {reference.text()}. 2. Pick up {reference.text()}. '
                f'3. Place the {obj.category} on {dest_ref.text()}. 4. Stop.')
        return {'slots': {'target': reference.text(), 'destination': dest_ref.text(),
                          'plan': plan},
                'refs': [(reference, target), (dest_ref, destination)],
                'target_ids': [target, destination],
                'actions': [goal, action] if action else [],
                'claim': ('plan', target, destination, base, action)}

    # ---- refinement
    def refine(self, world, candidate):
        """Return why a candidate is dropped ('' to keep it), checked against the graph."""
        graph = world.graph
        if candidate.get('kind') == 'refusal':
            return '' if is_absent(graph, candidate) else 'not_absent'
        for reference, target in candidate.get('refs', []):
            resolved = graph.resolve(reference)
            if resolved != [target]:
                return 'ambiguous_reference' if len(resolved) > 1 else 'wrong_reference'
        claim = candidate['claim']
        kind = claim[0]
        if kind == 'caption':
            _, target, color, category, support = claim
            obj = graph.scene.object(target)
            ok = (obj.color, obj.category, graph.support(target)) == (color, category, support)
            return '' if ok else 'wrong_answer'
        if kind == 'summary':
            _, counts, pairs = claim
            ok = all(graph.count(c) == n for c, n in counts.items()) and \
                all(graph.on(a, b) for a, b in pairs)
            return '' if ok else 'wrong_answer'
        if kind == 'count':
            return '' if graph.count(claim[1]) == claim[2] else 'wrong_answer'
        if kind == 'color':
            return '' if graph.scene.object(claim[1]).color == claim[2] else 'wrong_answer'
        if kind == 'category':
            return '' if graph.scene.object(claim[1]).category == claim[2] else 'wrong_answer'
        if kind == 'exists':
            return '' if (graph.count(claim[1], claim[2]) > 0) == claim[3] else 'wrong_answer'
        if kind == 'support':
            return '' if graph.support(claim[1]) == claim[2] else 'wrong_answer'
        if kind == 'relation':
            _, a, name, b, truth = claim
            holds = graph.holds(name, a, b)
            if name in DIRECTIONS and graph.direction(a, b) is None:
                return 'unclear_relation'  # too close to call either way
            return '' if holds == truth else 'wrong_answer'
        if kind == 'larger':
            _, a, b, winner = claim
            return '' if graph.extreme([a, b], 'largest') == winner else 'wrong_answer'
        if kind in ('count_on', 'tallest', 'what_relation'):
            return scene_questions.check(graph, claim)
        if kind == 'nav':
            return self._check_nav(world, claim)
        if kind in ('pick_place', 'plan'):
            return self._check_pick_place(world, claim, kind)
        raise ValueError(f'unknown claim {kind!r}')

    def _check_nav(self, world, claim):
        _, target, goal, steps = claim
        if goal is None:
            return 'unreachable'
        if steps is None:
            return 'expert_failed'
        snapshot = world.snapshot()
        try:
            for step in steps:
                if not world.apply(step).ok:
                    return 'expert_failed'
            if not world.nav_success(target):
                return 'expert_failed'
            world.restore(snapshot)
            if not world.base_is_free(goal.x, goal.y):
                return 'expert_failed'
            world.robot[:] = (goal.x, goal.y, goal.yaw)
            return '' if world.nav_success(target) else 'expert_failed'
        finally:
            world.restore(snapshot)

    def _check_pick_place(self, world, claim, kind):
        _, target, destination, base, action = claim
        if action is None:
            return 'unreachable'
        snapshot = world.snapshot()
        try:
            if kind == 'plan' and not world.set_goal(*base).ok:
                return 'unreachable'
            world.set_robot_pose(*base)
            if not world.apply(action).ok:
                return 'expert_failed'
            task = Task(kind, '', world.scene_seed, target_ids=(target, destination))
            return '' if world.task_success(task) else 'expert_failed'
        finally:
            world.restore(snapshot)


class TaskSampler:
    """
    Draw evaluation tasks in a live world from the same templates and refinement.

    :param templates: phrasings (a :class:`Templates`, a YAML path, or None for the default)
    """

    def __init__(self, templates=None, config: EngineConfig = None):
        if templates is None or not isinstance(templates, Templates):
            templates = Templates.load(templates)
        self.engine = DataEngine(config, templates)

    def sample(self, world: World, family: str, rng, tries=20) -> Task:
        """
        Return a refined task of a family, situated at the robot's current pose.

        For 'pick_place' the expert's base pose becomes the task situation (move the robot
        there before running it). Raises ValueError when no valid task is found.
        """
        if family not in ('object_caption', 'scene_caption', 'qa', 'nav', 'pick_place',
                          'plan', 'refusal'):
            raise ValueError(f'unknown task family {family!r}')
        for _ in range(tries):
            candidate = self.engine.propose(world, family, rng, nouns=HELDOUT_NOUNS)
            if candidate is None or self.engine.refine(world, candidate):
                continue
            family_name = family_of(candidate['kind'])
            situation = candidate.get('situation') or world.robot_pose
            return Task(family=family_name, instruction=candidate['instruction'],
                        scene_seed=world.scene_seed,
                        target_ids=tuple(candidate.get('target_ids', ())),
                        answer=candidate['answer'], actions=list(candidate.get('actions', [])),
                        situation=tuple(situation), kind=candidate['kind'])
        raise ValueError(f'no valid {family} task in scene {world.scene_seed} after {tries} tries')
