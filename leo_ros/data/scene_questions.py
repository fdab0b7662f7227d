"""
Questions about a scene as a whole, as people ask them about a real tabletop scan (no ROS).

Four question kinds beside the engine's lookups, each proposed loosely and checked against the
scene graph like the others:

- ``qa_count_on``: "How many objects are on the table?" (the objects a support carries);
- ``qa_tallest``: "What color is the tallest object?" / "... the tallest object on the table?"
  (by height; the tallest must beat the runner-up by ``TALLEST_RATIO``);
- ``qa_exists_category``: "Is there a cylinder?" (a category, any colour);
- ``qa_what_relation``: "What is left of the mug?" (the category of the one object in that
  relation to the anchor; asked only where it is unambiguous).
"""

from leo_ros.sim.graph import Reference
from leo_ros.sim.scene import CATEGORIES, SUPPORT_CATEGORIES

SCENE_QUESTION_KINDS = ('qa_count_on', 'qa_tallest', 'qa_exists_category', 'qa_what_relation')
#: the tallest object must be this much taller than the runner-up
TALLEST_RATIO = 1.15


def _unique_support(engine, graph, rng):
    """Return (id, reference) of a support that a reference names uniquely, or None."""
    supports = [i for i in graph.ids if graph.scene.object(i).category in SUPPORT_CATEGORIES
                and graph.scene.object(i).category != 'plate']
    if not supports:
        return None
    target = engine._pick(supports, rng)
    obj = graph.scene.object(target)
    for reference in (Reference(obj.category), Reference(obj.category, obj.color)):
        if graph.is_unique(reference, target):
            return target, reference
    return None


def carried(graph, support) -> list:
    """Return the ids of the objects standing on a support."""
    return [i for i in graph.ids if i != support and graph.support(i) == support]


def clearly_tallest(heights, ratio=TALLEST_RATIO):
    """Return the index of the tallest height if it beats the runner-up by ``ratio``, or None."""
    ranked = sorted(range(len(heights)), key=lambda k: heights[k], reverse=True)
    if not ranked or (len(ranked) > 1 and heights[ranked[0]] < ratio * heights[ranked[1]]):
        return None
    return ranked[0]


def tallest(graph, ids):
    """Return the id of the clearly tallest object (height extent), or None."""
    ids = list(ids)
    best = clearly_tallest([graph.scene.object(i).size[2] for i in ids])
    return None if best is None else ids[best]


def propose_count_on(engine, world, graph, rng):
    found = _unique_support(engine, graph, rng)
    if found is None:
        return None
    support, reference = found
    ids = carried(graph, support)
    return {'slots': {'target': reference.text(), 'count': str(len(ids))},
            'refs': [(reference, support)], 'target_ids': ids,
            'claim': ('count_on', support, len(ids))}


def propose_tallest(engine, world, graph, rng):
    found = _unique_support(engine, graph, rng) if rng.random() < 0.5 else None
    if found is not None:
        support, reference = found
        ids, where = carried(graph, support), f' on {reference.text()}'
        refs = [(reference, support)]
    else:
        ids, where, refs = list(graph.ids), '', []
    winner = tallest(graph, ids)
    if winner is None:
        return None
    color = graph.scene.object(winner).color
    return {'slots': {'target': f'the tallest object{where}', 'answer': color}, 'refs': refs,
            'target_ids': [winner], 'claim': ('tallest', tuple(ids), winner, color)}


def propose_exists_category(engine, world, graph, rng):
    category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
    present = graph.count(category) > 0
    if not present and rng.random() < 0.5:      # balance yes and no
        category = graph.scene.object(engine._pick(graph.ids, rng)).category
        present = True
    return {'slots': {'category': category, 'answer': 'yes' if present else 'no'}, 'refs': [],
            'target_ids': graph.select(category),
            'claim': ('exists', category, None, present)}


def propose_what_relation(engine, world, graph, rng):
    related = engine._pick_related(graph, rng)
    if related is None:
        return None
    target, name, anchor = related
    anchor_obj = graph.scene.object(anchor)
    anchor_ref = Reference(anchor_obj.category)
    if not graph.is_unique(anchor_ref, anchor):
        anchor_ref = Reference(anchor_obj.category, anchor_obj.color)
    category = graph.scene.object(target).category
    return {'slots': {'relation': name, 'anchor': anchor_ref.text(), 'answer': category},
            'refs': [(anchor_ref, anchor)], 'target_ids': [target],
            'claim': ('what_relation', target, name, anchor)}


PROPOSERS = {'qa_count_on': propose_count_on, 'qa_tallest': propose_tallest,
             'qa_exists_category': propose_exists_category,
             'qa_what_relation': propose_what_relation}


def check(graph, claim) -> str:
    """Return '' when a scene question's claim holds, else the drop reason."""
    kind = claim[0]
    if kind == 'count_on':
        return '' if len(carried(graph, claim[1])) == claim[2] else 'wrong_answer'
    if kind == 'tallest':
        _, ids, winner, color = claim
        ok = tallest(graph, list(ids)) == winner and graph.scene.object(winner).color == color
        return '' if ok else 'wrong_answer'
    if kind == 'what_relation':
        from leo_ros.sim.graph import DIRECTIONS
        _, target, name, anchor = claim
        if name in DIRECTIONS and graph.direction(target, anchor) is None:
            return 'unclear_relation'
        holders = [i for i in graph.ids if i != anchor and graph.holds(name, i, anchor)]
        if holders != [target]:
            return 'ambiguous_reference' if len(holders) > 1 else 'wrong_answer'
        return ''
    raise ValueError(f'unknown scene-question claim {kind!r}')
