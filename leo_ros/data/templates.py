"""Instruction templates: phrasings with named slots, kept in YAML data files."""

from pathlib import Path
import re
import string

from leo_ros.data.scene_questions import SCENE_QUESTION_KINDS
import yaml

DEFAULT_TEMPLATES = Path(__file__).resolve().parent / 'templates' / 'default.yaml'

#: Template kinds the engine knows, by family.
KINDS = {
    'object_caption': ('object_caption',),
    'scene_caption': ('scene_caption',),
    'qa': ('qa_count', 'qa_color', 'qa_category', 'qa_existence', 'qa_support', 'qa_relation',
           'qa_size') + SCENE_QUESTION_KINDS,
    'nav': ('nav',),
    'pick_place': ('pick_place',),
    'plan': ('plan',),
}
FAMILY_OF_KIND = {kind: family for family, kinds in KINDS.items() for kind in kinds}
SLOTS = ('target', 'object', 'color', 'category', 'categories', 'count', 'answer', 'relation',
         'anchor', 'support', 'destination', 'other', 'plan', 'summary')


class Templates:
    """
    Phrasings per kind: ``instructions`` and ``answers`` lists with ``{slot}`` fields.

    :param data: the parsed YAML (``{'kinds': {kind: {'instructions': [...], 'answers': [...]}}}``)
    :param source: where it came from (for messages)
    """

    def __init__(self, data: dict, source='<dict>'):
        self.source = str(source)
        kinds = (data or {}).get('kinds')
        if not isinstance(kinds, dict):
            raise ValueError(f'{self.source}: templates need a "kinds" mapping')
        self.kinds = {}
        for kind, entry in kinds.items():
            if kind not in FAMILY_OF_KIND:
                raise ValueError(f'{self.source}: unknown template kind {kind!r}; known: '
                                 f'{sorted(FAMILY_OF_KIND)}')
            lists = {}
            for part in ('instructions', 'answers'):
                phrasings = (entry or {}).get(part)
                if not phrasings or not all(isinstance(p, str) for p in phrasings):
                    raise ValueError(f'{self.source}: {kind}.{part} must be a non-empty list '
                                     f'of strings')
                for phrasing in phrasings:
                    for _, slot, _, _ in string.Formatter().parse(phrasing):
                        if slot is not None and slot not in SLOTS:
                            raise ValueError(f'{self.source}: {kind}: unknown slot {{{slot}}} '
                                             f'in {phrasing!r}; slots: {SLOTS}')
                lists[part] = list(phrasings)
            self.kinds[kind] = lists

    @classmethod
    def load(cls, path=None) -> 'Templates':
        """Load a YAML templates file (default: the package's ``templates/default.yaml``)."""
        path = Path(path) if path else DEFAULT_TEMPLATES
        with open(path, encoding='utf-8') as handle:
            return cls(yaml.safe_load(handle), source=path)

    def has(self, kind) -> bool:
        """Return whether there are phrasings for a kind."""
        return kind in self.kinds

    def fill(self, kind, rng, **slots):
        """
        Return (instruction, answer, template id) for one random phrasing of a kind.

        :raises KeyError: when a phrasing needs a slot that was not given
        """
        entry = self.kinds[kind]
        i = int(rng.integers(len(entry['instructions'])))
        j = int(rng.integers(len(entry['answers'])))
        instruction = entry['instructions'][i].format(**slots)
        answer = entry['answers'][j].format(**slots)
        return _sentence(instruction), _sentence(answer), f'{kind}/{i}/{j}'


def split_template(instruction, phrasing, greedy=False):
    """
    Split a rendered instruction into template text and slot values.

    :param instruction: the rendered instruction ('How many bowls are there?')
    :param phrasing: the template it was rendered from ('How many {categories} are there?')
    :param greedy: let earlier slots take the longest values instead of the shortest (the
        two splits differ when a value contains the template text after it: 'Put the mug on
        the table on the shelf.')
    :return: alternating parts ``[text, value, text, value, ..., text]`` (texts at even
        indices), or None when the instruction does not match the template
    """
    pieces = re.split(r'\{[a-z_]+\}', phrasing)
    pattern = ('(.+)' if greedy else '(.+?)').join(re.escape(p) for p in pieces)
    match = re.fullmatch(pattern, instruction, flags=re.IGNORECASE | re.DOTALL)
    if not match:
        return None
    parts, cursor = [], 0
    for index in range(1, len(pieces)):
        start, end = match.span(index)
        parts += [instruction[cursor:start], instruction[start:end]]
        cursor = end
    parts.append(instruction[cursor:])
    return parts


def fix_articles(text: str) -> str:
    """Return ``text`` with 'a' before a vowel made 'an' ('a orange' -> 'an orange')."""
    return re.sub(r'\b([Aa]) (?=[aeiou])', r'\1n ', text)


def _sentence(text):
    text = fix_articles(' '.join(text.split()))
    return text[:1].upper() + text[1:] if text else text
