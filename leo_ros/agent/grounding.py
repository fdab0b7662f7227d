"""
The grounding gate: no motion toward what is not in the scene (pure Python + numpy).

Two checks run on every decided motion, apart from the model:

- :meth:`GroundingGate.check_instruction` reads the objects the instruction names ("the red
  mug", "the bowl left of the box") and refuses when one of them cannot be in the current
  scene: a noun the agent has no category for ("the purple elephant"), a category no object
  carries, or a colour no object of that category has. An object-directed action (a
  navigation goal, a pick-and-place) also needs the instruction to name an object at all
  ("go to the ", "drive at full speed" name none).
- :meth:`GroundingGate.check_objects` refuses an action whose objects (the ids its grounded
  tokens point at) are not in the newest scene, e.g. after a world reset.

A text answer is checked the same way (:meth:`GroundingGate.check_answer`): "What color is the
green chair?" in a room without one gets "I don't see a green chair.", not a colour. Questions
whether something is there or how many there are ("Is there a green chair?") are answered by
the policy: "no" and "0" are their right answers.

Labels come from a classifier and can be wrong or missing: an object whose label is
'unknown' or below ``label_confidence`` could be anything, so it never causes a refusal.
Colours are compared by chroma (brightness divided out), because the scene tokens' mean colours
carry the renderer's or camera's shading; a colour matches when it is about as near as the
nearest palette colour (``color_margin``), so a brown plate is not taken for an orange one.
White, grey and black are told apart by brightness in overlapping bands: black stands apart,
but shading makes white and grey overlap (a white shelf seen in shade is 0.43, a grey table 0.3).
"""

from dataclasses import dataclass
import math
import re

from leo_ros.vocabulary import CATEGORIES, COLORS, plural, SUPPORT_CATEGORIES
import numpy as np

#: Nouns that name places, parts or the agent, not objects ("the left", "the floor").
PLACE_NOUNS = frozenset((
    'floor', 'ground', 'room', 'left', 'right', 'front', 'back', 'middle', 'centre', 'center',
    'corner', 'wall', 'walls', 'way', 'side', 'end', 'top', 'bottom', 'edge', 'one', 'ones',
    'other', 'others', 'it', 'them', 'there', 'here', 'me', 'you', 'yourself', 'us', 'area',
    'spot', 'place', 'position', 'space', 'scene', 'surroundings', 'moment', 'time', 'speed',
    'rest', 'same', 'start', 'beginning', 'door', 'robot', 'agent', 'view', 'camera', 'goal',
    'previous', 'instructions', 'instruction', 'next', 'first', 'last', 'second', 'third',
    'things', 'thing', 'object', 'objects', 'item', 'items', 'stuff', 'plan', 'look',
    'picture', 'trip', 'move', 'favor', 'favour', 'minute', 'step', 'steps', 'turn', 'job',
    'task', 'route', 'path', 'tour', 'sure', 'while', 'bit', 'lot', 'little',
    # what a question asks for, not an object ("a short caption of", "the colour of")
    'caption', 'summary', 'description', 'colour', 'color', 'kind', 'type', 'name', 'size',
    'shape', 'number', 'sentence', 'detail', 'details', 'overview', 'answer', 'question',
    'height', 'word', 'words', 'account', 'list', 'idea', 'image', 'photo', 'report', 'amount',
    'total', 'count',
))
_DETERMINERS = frozenset(('the', 'a', 'an', 'this', 'that', 'these', 'those', 'my', 'your',
                          'its', 'some', 'any', 'every', 'each', 'all'))
#: Words that end a noun phrase.
_STOPS = frozenset((
    'on', 'onto', 'in', 'into', 'to', 'at', 'of', 'from', 'with', 'by', 'near', 'next', 'and',
    'or', 'then', 'behind', 'under', 'over', 'above', 'below', 'beside', 'between', 'left',
    'right', 'for', 'is', 'are', 'it', 'so', 'that', 'which', 'who', 'where', 'please',
    'up', 'down', 'off', 'away', 'back', 'there', 'here', 'belongs', 'ends', 'facing', 'face',
    'closer', 'close', 'nearest', 'farthest', 'furthest', 'than', 'until', 'while', 'as',
    'slowly', 'quickly', 'now', 'again', 'too', 'also', 'before', 'after', 'without',
    'against', 'toward', 'towards', 'through', 'across', 'around', 'along', 'inside',
))
_WORD = re.compile(r'[a-z]+')
#: Named colours with an rgb in [0, 1]: the built-in world's palette.
DEFAULT_COLORS = COLORS
COLOR_SYNONYMS = {'gray': 'grey', 'violet': 'purple', 'golden': 'yellow', 'gold': 'yellow'}
ACHROMATIC = frozenset(('white', 'grey', 'black'))
#: Categories of the built-in world.
DEFAULT_CATEGORIES = CATEGORIES
#: Words for colours the palette lacks: named, they can match nothing ("the pink mug").
OTHER_COLORS = frozenset(('pink', 'cyan', 'magenta', 'turquoise', 'beige', 'silver', 'teal',
                          'maroon', 'navy', 'olive', 'lime', 'indigo', 'crimson', 'scarlet',
                          'lavender', 'tan', 'khaki', 'ivory', 'amber', 'rainbow'))
#: Actions that go to, or handle, a named object.
OBJECT_ACTIONS = ('nav_goal', 'pick_place')
#: Verbs that move an object somewhere: the last "on ..." of their sentence is where to.
PLACING_VERBS = frozenset((
    'put', 'place', 'set', 'move', 'transfer', 'lower', 'belongs', 'get', 'fetch', 'leave',
    'bring', 'deliver', 'relocate', 'ends', 'need', 'carry', 'drop', 'shift', 'pop', 'haul',
    'lay', 'stand', 'take', 'tidy', 'want', 'return',
))
_DESTINATIONS = frozenset(('on', 'onto', 'to', 'atop', 'into', 'in'))
#: a support's footprint is widened by this for "X on the Y" [m]
ON_MARGIN = 0.1
#: Brightness (max of rgb) bands of the achromatic colours. Shading of partial views makes a
#: white object 0.43-0.7 and a grey one 0.3-0.5, so only black stands apart.
ACHROMATIC_BRIGHTNESS = {'black': (0.0, 0.2), 'grey': (0.12, 0.7), 'white': (0.35, 1.01)}
#: Questions whose answer may rightly be "no" or "0" for an absent object.
_WHETHER_OR_HOW_MANY = re.compile(
    r'^\s*(is|are|do|does|can|could|will|would|have|has)\b.*\b(a|an|any)\b'
    r'|\b(how many|number of|count)\b|\b(is there|are there|any)\b', re.IGNORECASE)


@dataclass
class GroundingConfig:
    """
    How strictly named objects are matched against the scene.

    :param label_confidence: labels below this confidence count as unknown (any category)
    :param color_candidates: a colour matches an object when it is among the object's this
        many nearest palette colours by chroma...
    :param color_margin: ... and its squared chroma distance is at most the nearest one's
        plus this
    :param saturation: objects whose colour is less saturated than this are white, grey or
        black
    :param unknown_words: what a noun with no known category ("the elephant", "the cup") or a
        colour outside the palette ("crimson") does: 'refuse' (the gate refuses it: nothing
        the agent cannot name moves the robot) or 'model' (the policy decides: it was trained
        to refuse what is not there and reads words it never saw, the open vocabulary); known
        categories and colours that are absent are refused either way
    """

    label_confidence: float = 0.7
    color_candidates: int = 2
    color_margin: float = 0.04
    saturation: float = 0.25
    unknown_words: str = 'refuse'

    def __post_init__(self):
        if not 0.0 <= self.label_confidence <= 1.0:
            raise ValueError('GroundingConfig.label_confidence must be in [0, 1], got '
                             f'{self.label_confidence}')
        if int(self.color_candidates) < 1:
            raise ValueError('GroundingConfig.color_candidates must be >= 1, got '
                             f'{self.color_candidates}')
        if not 0.0 <= self.color_margin <= 3.0:
            raise ValueError(f'GroundingConfig.color_margin must be in [0, 3], got '
                             f'{self.color_margin}')
        if not 0.0 < self.saturation < 1.0:
            raise ValueError(f'GroundingConfig.saturation must be in (0, 1), got '
                             f'{self.saturation}')
        if self.unknown_words not in ('refuse', 'model'):
            raise ValueError("GroundingConfig.unknown_words must be 'refuse' or 'model', got "
                             f'{self.unknown_words!r}')


@dataclass(frozen=True)
class NamedObject:
    """One object an instruction names: its words, category and colour ('' when none)."""

    phrase: str
    category: str = ''
    color: str = ''


def _singular(word, categories):
    if word in categories:
        return word
    for category in categories:
        if word == plural(category):
            return category
    return ''


def named_objects(text, categories=DEFAULT_CATEGORIES, colors=DEFAULT_COLORS) -> list:
    """
    Return the objects ``text`` names: noun phrases after a determiner, and bare categories.

    A phrase whose head noun is a place or the agent ("the floor", "the left", "me") is not an
    object. A phrase with no known category keeps ``category=''`` (an unknown thing).
    """
    words = _WORD.findall(text.lower())
    categories = set(categories)
    found, used = [], set()
    k = 0
    while k < len(words):
        category = _singular(words[k], categories)
        if words[k] in _DETERMINERS or category:
            start = k + 1 if words[k] in _DETERMINERS else k
            end = start
            while end < len(words) and words[end] not in _STOPS and \
                    words[end] not in _DETERMINERS:
                end += 1
                if _singular(words[end - 1], categories):
                    break
            phrase = words[start:end]
            k = max(end, k + 1)
            if not phrase or phrase[-1] in PLACE_NOUNS or all(w in PLACE_NOUNS for w in phrase):
                continue
            heads = [_singular(w, categories) for w in phrase]
            head = next((h for h in reversed(heads) if h), '')
            color = next((COLOR_SYNONYMS.get(w, w) for w in phrase
                          if COLOR_SYNONYMS.get(w, w) in colors or w in OTHER_COLORS), '')
            key = (' '.join(phrase), len(found))
            if key not in used:
                used.add(key)
                found.append(NamedObject(' '.join(phrase), head, color))
        else:
            k += 1
    return found


def color_matches(rgb, name, colors=DEFAULT_COLORS, candidates=2, saturation=0.25,
                  margin=0.04) -> bool:
    """Return whether an object's mean colour (rgb in [0, 1]) could be called ``name``."""
    name = COLOR_SYNONYMS.get(name, name)
    if name not in colors:
        return False
    rgb = np.asarray(rgb, np.float64)
    if not np.isfinite(rgb).all() or rgb.max() <= 1e-3:
        return name == 'black'
    if (rgb.max() - rgb.min()) / rgb.max() < saturation:
        if name not in ACHROMATIC:
            return False
        low, high = ACHROMATIC_BRIGHTNESS.get(name, (0.0, 1.01))
        return low <= float(rgb.max()) <= high
    if name in ACHROMATIC:
        return False
    chroma = rgb / rgb.max()
    distances = {other: float(((np.asarray(value) / max(value) - chroma) ** 2).sum())
                 for other, value in colors.items() if other not in ACHROMATIC}
    ranked = sorted(distances, key=distances.get)
    return name in ranked[:candidates] and distances[name] <= distances[ranked[0]] + margin


def _color_of(words, colors) -> str:
    return next((COLOR_SYNONYMS.get(w, w) for w in words if COLOR_SYNONYMS.get(w, w) in colors),
                '')


def on_relations(text, categories, supports) -> list:
    """
    Return the (object words, support words) that ``text`` names as "the X on the Y".

    Only descriptions count ("the bowl on the plate belongs on the shelf"), not where to put
    something: when the text has a placing verb, its last "on"/"to" is the destination.
    """
    words = _WORD.findall(text.lower())
    placing = any(w in PLACING_VERBS for w in words)
    last_destination = max((k for k, w in enumerate(words) if w in _DESTINATIONS), default=-1)
    pairs = []
    for k, word in enumerate(words):
        if word != 'on' or k < 2 or k + 2 >= len(words) or words[k + 1] != 'the' or \
                (placing and k == last_destination) or words[k - 1] not in categories:
            continue
        start = k - 1             # back to 'the', at most three words ('the small red bowl')
        while start > 0 and words[start - 1] != 'the' and k - start < 3:
            start -= 1
        end = k + 2
        while end < len(words) - 1 and words[end] not in supports and end - k < 5:
            end += 1
        if start > 0 and words[start - 1] == 'the' and words[end] in supports:
            pairs.append((words[start:k], words[k + 2:end + 1]))
    return pairs


def rests_on(centers, sizes, a, b, margin=ON_MARGIN) -> bool:
    """
    Return whether object ``a`` could rest on ``b``.

    :param centers: (K, 3) box centres in a z-up frame [m]
    :param sizes: (K, 3) box extents [m]; perception's partial views make them loose, so the
        test is too: ``a``'s centre over ``b``'s footprint widened by ``margin``, its bottom
        near ``b``'s top
    """
    top = centers[b, 2] + sizes[b, 2] / 2
    bottom = centers[a, 2] - sizes[a, 2] / 2
    inside = np.all(np.abs(centers[a, :2] - centers[b, :2]) <= sizes[b, :2] / 2 + margin)
    return bool(inside and centers[a, 2] > top - 0.02 and top - 0.08 <= bottom <= top + 0.15)


def _article(phrase):
    return ('an ' if phrase[:1] in 'aeiou' else 'a ') + phrase


class GroundingGate:
    """
    Check a motion against the objects of the current scene.

    :param config: :class:`GroundingConfig`
    :param categories: category names the agent knows (the scene's own labels are added)
    :param colors: colour name -> rgb in [0, 1]
    """

    def __init__(self, config=None, categories=DEFAULT_CATEGORIES, colors=None):
        self.config = config or GroundingConfig()
        self.categories = tuple(categories)
        self.colors = dict(colors or DEFAULT_COLORS)

    def _scene_objects(self, scene):
        """Return [(label or '' when unknown, rgb)] of the scene's objects."""
        if scene is None:
            return []
        labels = list(getattr(scene, 'labels', []) or [])
        confidences = np.asarray(getattr(scene, 'confidences', np.zeros(len(labels))))
        colors = np.asarray(getattr(scene, 'colors', np.zeros((len(labels), 3))))
        objects = []
        for k in range(len(scene)):
            label = str(labels[k]) if k < len(labels) else 'unknown'
            sure = k < len(confidences) and math.isfinite(float(confidences[k])) and \
                float(confidences[k]) >= self.config.label_confidence
            objects.append((label if label not in ('', 'unknown') and sure else '',
                            colors[k] if k < len(colors) else np.zeros(3)))
        return objects

    def check_instruction(self, text, scene, action_kind, unknown_words=None) -> str:
        """
        Return a refusal ("I don't see a purple elephant.") or '' when the motion may go on.

        :param text: the instruction
        :param scene: the current SceneTokens
        :param action_kind: the decided action's kind ('nav_goal', 'nav_step', ...)
        :param unknown_words: 'refuse' or 'model' for this check (default: the config's)
        """
        objects = self._scene_objects(scene)
        known = set(self.categories) | {label for label, _ in objects if label}
        named = named_objects(text, known, self.colors)
        if not named:
            if action_kind in OBJECT_ACTIONS:
                return ("I don't see what to go to: the instruction names no object in the "
                        'scene.')
            return ''
        lenient = (unknown_words or self.config.unknown_words) == 'model'
        for item in named:
            if not item.category:
                if lenient:
                    continue       # the policy decides about words the agent cannot name
                return f"I don't see {_article(item.phrase)}."
            if item.color in OTHER_COLORS and lenient:
                continue
            if not self._matching(objects, item.category, item.color):
                described = ' '.join(w for w in (item.color, item.category) if w)
                return f"I don't see {_article(described)}."
        return self._check_on_relations(text, objects, scene, known)

    def _matching(self, objects, category, color) -> list:
        """Return the indices of the objects that could be a ``color`` ``category``."""
        return [k for k, (label, rgb) in enumerate(objects) if label in ('', category) and (
            not color or color_matches(rgb, color, self.colors, self.config.color_candidates,
                                       self.config.saturation, self.config.color_margin))]

    def _check_on_relations(self, text, objects, scene, known) -> str:
        """Refuse "the bowl on the plate" when no such bowl rests on such a plate."""
        supports = {c for c in known if c in SUPPORT_CATEGORIES}
        centers = np.asarray(getattr(scene, 'centers', np.zeros((0, 3))), np.float64)
        sizes = np.asarray(getattr(scene, 'sizes', np.zeros((0, 3))), np.float64)
        if len(centers) != len(objects):
            return ''
        for thing, support in on_relations(text, known, supports):
            things = self._matching(objects, thing[-1], _color_of(thing, self.colors))
            holders = self._matching(objects, support[-1], _color_of(support, self.colors))
            if not any(rests_on(centers, sizes, a, b) for a in things for b in holders
                       if a != b):
                return f"I don't see {_article(' '.join(thing + ['on', 'the'] + support))}."
        return ''

    def check_answer(self, text, scene) -> str:
        """
        Return a refusal for a text answer about an object that is not there, or ''.

        Questions whether there is one, or how many ("Is there a green chair?", "How many
        mugs are there?"), are never refused: "no" and "0" answer them.
        """
        if _WHETHER_OR_HOW_MANY.search(text):
            return ''
        # A question names many things that are no objects ("the weather"): the policy,
        # trained to refuse what is not there, decides about words the gate cannot name.
        return self.check_instruction(text, scene, 'text', unknown_words='model')

    def check_decision(self, text, decision, scene, current=...) -> str:
        """
        Return a refusal for a decision, or '' when it may go on.

        Every action kind of the decision is checked against the instruction, and the objects
        the action points at against ``current`` (the scene now, None when there is none;
        default ``scene``, the one decided on). A decision without an action is a text answer
        (:meth:`check_answer`). leo-agent and ``leo-eval --gate`` both judge decisions with
        this.
        """
        actions = list(getattr(decision, 'actions', None) or [])
        if not actions and getattr(decision, 'action', None) is not None:
            actions = [decision.action]
        if not actions:
            return self.check_answer(text, scene)
        refusal = ''
        for kind in dict.fromkeys(a.kind for a in actions):
            refusal = refusal or self.check_instruction(text, scene, kind)
        return refusal or self.check_objects(action_object_ids(decision, scene),
                                             scene if current is ... else current)

    @staticmethod
    def check_objects(object_ids, scene) -> str:
        """Return a refusal when an action's object ids are not all in ``scene``, else ''."""
        if not object_ids:
            return ''
        present = set() if scene is None else {int(i) for i in np.asarray(scene.ids)}
        missing = [int(i) for i in object_ids if int(i) not in present]
        if missing:
            return (f'I no longer see object {", ".join(map(str, missing))}: it is not in the '
                    'current scene.')
        return ''


def action_object_ids(decision, scene) -> list:
    """
    Return the scene ids of the objects a decision's action points at.

    ``Decision.object_ids`` when the policy gives them; else the ``<obj_k>`` tokens of a
    grounded action, where k indexes the objects of ``scene`` (the scene decided on).
    """
    ids = getattr(decision, 'object_ids', None)
    if ids:
        return [int(i) for i in ids]
    if scene is None:
        return []
    found = []
    for token in getattr(decision, 'tokens', []) or []:
        token = str(token)
        if token.startswith('<obj_') and token.endswith('>'):
            try:
                index = int(token[5:-1])
            except ValueError:
                continue
            if 0 <= index < len(scene):
                found.append(int(np.asarray(scene.ids)[index]))
            else:
                found.append(-1 - index)            # points past the scene: never present
    return found
