"""
Instructions that name what is not there, and the refusals they get (no ROS).

The data engine writes them beside the other families, so that the policy learns to refuse
rather than move towards the nearest lookalike: an instruction of a grounded kind (go to, put,
bring, describe, what colour, what is it on) whose object is absent:

- ``category``: a category of the world that this scene lacks ("the plate");
- ``color``: a category it has, in a colour no such object has ("the purple mug");
- ``noun``: a thing the world never holds ("the elephant"; training and evaluation draw from
  two disjoint word lists);
- ``relation``: objects that exist in a relation that does not hold ("the mug on the shelf");
- ``empty``: no object at all ("Go to the.").

The answer is ``<refuse>`` and a sentence: "I don't see a purple mug." (``Which object do you
mean?`` for an empty one).
"""

from leo_ros.sim.graph import Reference
from leo_ros.sim.scene import CATEGORIES, COLORS, SUPPORT_CATEGORIES

#: template kinds whose target a refusal replaces
REFUSAL_KINDS = ('nav', 'pick_place', 'plan', 'object_caption', 'qa_color', 'qa_support')
REFUSAL_FORMS = ('category', 'color', 'noun', 'relation', 'empty')
#: things the world never holds, named in training refusals
TRAIN_NOUNS = ('sofa', 'lamp', 'bed', 'piano', 'laptop', 'bottle', 'cat', 'dog', 'plant',
               'clock', 'umbrella', 'guitar', 'television', 'backpack', 'bicycle', 'vase',
               'pillow', 'book', 'phone', 'kettle', 'printer', 'bucket', 'toy car', 'hat')
#: ... and in evaluation refusals only
HELDOUT_NOUNS = ('elephant', 'giraffe', 'trumpet', 'microwave', 'skateboard', 'surfboard',
                 'teddy bear', 'refrigerator', 'violin', 'helmet', 'candle', 'fish tank')
EMPTY_ANSWER = 'Which object do you mean?'
#: filler values for the template slots a refusal does not use
_FILLER = {'color': 'red', 'category': 'mug', 'support': 'the floor', 'answer': 'no',
           'plan': 'Stop.', 'other': 'the box', 'relation': 'near', 'anchor': 'the table',
           'categories': 'mugs', 'count': '0', 'summary': '', 'object': 'the mug'}


def with_article(phrase: str) -> str:
    """Return 'a purple mug' / 'an elephant'."""
    return ('an ' if phrase[:1] in 'aeiou' else 'a ') + phrase


def absent_phrase(graph, form, rng, nouns=TRAIN_NOUNS):
    """
    Return a noun phrase (no article) naming nothing in the scene, or None.

    :param form: one of ``REFUSAL_FORMS`` but 'empty'
    """
    present = {graph.scene.object(i).category for i in graph.ids}
    if form == 'category':
        missing = [c for c in CATEGORIES if c not in present]
        return missing[int(rng.integers(len(missing)))] if missing else None
    if form == 'noun':
        return nouns[int(rng.integers(len(nouns)))]
    if form == 'color':
        category = sorted(present)[int(rng.integers(len(present)))]
        colours = [c for c in COLORS if graph.count(category, c) == 0]
        if not colours:
            return None
        return f'{colours[int(rng.integers(len(colours)))]} {category}'
    if form == 'relation':
        for _ in range(6):
            category = sorted(present)[int(rng.integers(len(present)))]
            anchors = [c for c in sorted(present) if c in SUPPORT_CATEGORIES and c != category]
            if not anchors:
                return None
            anchor = anchors[int(rng.integers(len(anchors)))]
            if len(graph.resolve(Reference(anchor))) != 1:
                continue
            reference = Reference(category, relation='on', anchor=Reference(anchor))
            if not graph.resolve(reference):
                return reference.noun_phrase()
        return None
    raise ValueError(f'unknown refusal form {form!r}')


def propose_refusal(templates, graph, rng, nouns=TRAIN_NOUNS, forms=REFUSAL_FORMS):
    """
    Return a refusal candidate (instruction, answer, template, base kind, form), or None.

    :param templates: the engine's ``Templates``
    """
    kinds = [k for k in REFUSAL_KINDS if templates.has(k)]
    if not kinds or not graph.ids:
        return None
    kind = kinds[int(rng.integers(len(kinds)))]
    form = forms[int(rng.integers(len(forms)))]
    if form == 'empty':
        phrase, answer, target = '', EMPTY_ANSWER, ''
    else:
        phrase = absent_phrase(graph, form, rng, nouns)
        if phrase is None:
            return None
        answer, target = f"I don't see {with_article(phrase)}.", f'the {phrase}'
    destination = _present_support(graph, rng)
    slots = {**_FILLER, 'target': target, 'destination': destination}
    if kind in ('pick_place', 'plan') and form != 'empty' and rng.random() < 0.4:
        # the destination is what is missing
        slots.update(target=_present_small(graph, rng) or 'the mug', destination=target)
    instruction, _, template = templates.fill(kind, rng, **slots)
    return {'kind': 'refusal', 'base_kind': kind, 'form': form, 'instruction': instruction,
            'answer': answer, 'template': template, 'target_ids': [], 'absent': phrase}


def is_absent(graph, candidate) -> bool:
    """Check a refusal against the scene graph: what it names really is not there."""
    phrase = candidate['absent']
    if candidate['form'] in ('empty', 'noun'):
        return True
    words = phrase.split(' ')
    if candidate['form'] == 'category':
        return graph.count(words[-1]) == 0
    if candidate['form'] == 'color':
        return graph.count(words[1], words[0]) == 0
    category, anchor = words[0], words[-1]
    return not graph.resolve(Reference(category, relation='on', anchor=Reference(anchor)))


def _present_support(graph, rng) -> str:
    supports = [i for i in graph.ids if graph.scene.object(i).category in SUPPORT_CATEGORIES]
    if not supports:
        return 'the table'
    obj = graph.scene.object(supports[int(rng.integers(len(supports)))])
    return f'the {obj.color} {obj.category}'


def _present_small(graph, rng):
    small = list(graph.scene.small_objects())
    if not small:
        return None
    obj = small[int(rng.integers(len(small)))]
    return f'the {obj.color} {obj.category}'
