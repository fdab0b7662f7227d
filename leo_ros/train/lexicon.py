"""
Open-vocabulary rewording of evaluation instructions (no ROS).

A ``Lexicon`` (``config/open_vocabulary.yaml``) maps every category word (singular and plural)
and colour word of the world to synonyms or descriptions that the training data never uses;
``rewrite`` replaces them in an instruction ("Go to the red mug." -> "Go to the crimson
cup."). ``training_words`` lists the words the training data can contain, so a test can show
that the open vocabulary is new to the policy.
"""

from pathlib import Path
import re

from leo_ros.data.templates import fix_articles
import yaml

#: function words an instruction may share with the training data
FUNCTION_WORDS = frozenset(
    'a an the to of on in at by for from with and or is are be it its this that these those '
    'i you me my your we us our there here what which who where how any some all one '
    'do does did can could would will should please over up down into onto out near around '
    'about across towards toward beside atop'.split())


class Lexicon:
    """
    Synonyms per category (singular, plural) and colour.

    :param data: the parsed YAML
    :param source: where it came from (for messages)
    """

    def __init__(self, data: dict, source='<dict>'):
        from leo_ros.vocabulary import plural
        from leo_ros.sim.scene import CATEGORIES, COLORS
        self.replacements = {}
        categories, colors = data.get('categories') or {}, data.get('colors') or {}
        unknown = sorted(set(categories) - set(CATEGORIES)) + sorted(set(colors) - set(COLORS))
        if unknown:
            raise ValueError(f'{source}: unknown categories or colours {unknown}')
        for category, forms in categories.items():
            for form, word in (('singular', category), ('plural', plural(category))):
                options = list((forms or {}).get(form) or [])
                if options:
                    self.replacements[word] = options
        for colour, options in colors.items():
            if options:
                self.replacements[colour] = list(options)
        if not self.replacements:
            raise ValueError(f'{source}: no synonyms')
        words = sorted(self.replacements, key=len, reverse=True)
        self.pattern = re.compile(r'\b(' + '|'.join(map(re.escape, words)) + r')\b',
                                  re.IGNORECASE)

    @classmethod
    def load(cls, path) -> 'Lexicon':
        path = Path(path)
        if not path.is_file():
            raise ValueError(f'{path}: lexicon file not found')
        with open(path, encoding='utf-8') as handle:
            return cls(yaml.safe_load(handle) or {}, source=path)

    def rewrite(self, instruction: str, rng) -> str:
        """Replace every known category and colour word by one of its synonyms."""
        def swap(match):
            options = self.replacements[match.group(0).lower()]
            return options[int(rng.integers(len(options)))]
        return fix_articles(self.pattern.sub(swap, instruction))

    def words(self) -> set:
        """Return every word the replacements use."""
        return {w.lower() for options in self.replacements.values() for option in options
                for w in re.findall(r"[A-Za-z']+", option)}


def template_words(path, parts=('instructions', 'answers')) -> set:
    """Return the words of a templates file's phrasings (slots removed)."""
    with open(path, encoding='utf-8') as handle:
        data = yaml.safe_load(handle)
    words = set()
    for entry in data['kinds'].values():
        for phrasing in [p for part in parts for p in entry[part]]:
            words.update(w.lower() for w in re.findall(r"[A-Za-z']+",
                                                       re.sub(r'\{[a-z_]+\}', ' ', phrasing)))
    return words


def training_words(templates_files) -> set:
    """
    Return every word the training data can contain.

    That is the templates' words, the world's category and colour words, the data engine's
    generated answers (plans, scene captions, refusals) and the rewording augmentation's words.
    """
    from leo_ros.data import refusals
    from leo_ros.data.engine import NUMBERS
    from leo_ros.vocabulary import plural
    from leo_ros.sim.scene import CATEGORIES, COLORS
    from leo_ros.train.augment import FILLERS, PREFIXES
    words = set()
    for path in templates_files:
        words |= template_words(path)
    generated = ['Go to Pick up Place the on Stop', 'The room has holds',
                 refusals.EMPTY_ANSWER, "I don't see a an", 'Which object is Point at Find',
                 ' '.join(refusals.TRAIN_NOUNS), ' '.join(NUMBERS), ' '.join(PREFIXES),
                 ' '.join(FILLERS), ' '.join(CATEGORIES), ' '.join(map(plural, CATEGORIES)),
                 ' '.join(COLORS), 'yes no left right behind in front of near largest smallest']
    for text in generated:
        words.update(w.lower() for w in re.findall(r"[A-Za-z']+", text))
    return words
