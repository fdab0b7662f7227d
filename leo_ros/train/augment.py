"""
Instruction rewording for training: extra copies of samples whose instruction is reworded.

A small template set teaches the model the exact words of each family: a held-out wording that
borrows a word of another family ("How many bowls can you see?" next to the existence question
"Do you see a purple bowl?") is then answered as that family. Each reworded copy changes only
the template's own words, never the slot values (the object names, relations and answers), so
the meaning stays: it gains a prefix or an inserted filler shared by every family, or loses one
template word. This is EDA-style augmentation (Wei and Zou, 2019) restricted to the template.
"""

from dataclasses import dataclass
import re

from leo_ros.data.templates import KINDS, split_template

FAMILIES = tuple(KINDS)

#: Openers any instruction may start with; they carry no task family.
PREFIXES = ('Please, ', 'Hey, ', 'Okay, ', 'Robot, ', 'Now, ', 'Quick one: ', 'Next: ',
            'I have a question: ', 'I have a task for you: ', 'Listen, ')
#: Fillers inserted before the closing punctuation; they carry no task family either.
FILLERS = (' please', ' for me', ' right now', ' in this room', ' from where you are',
           ' if you can', ' now', ' around you')


@dataclass
class AugmentConfig:
    """
    Reworded copies of training samples (:func:`augment_records`).

    :param fraction: share of the train records of ``families`` that get one reworded copy
    :param families: task families whose records are reworded
    :param prefixes: openers (a copy starts with one with probability ``prefix``)
    :param fillers: phrases inserted before the final punctuation (probability ``filler``)
    :param prefix: probability of a prefix in a copy
    :param filler: probability of a filler in a copy
    :param drop: probability of dropping one template word (kept: at least two)
    """

    fraction: float = 0.0
    families: tuple = ('qa', 'nav', 'pick_place', 'plan')
    prefixes: tuple = PREFIXES
    fillers: tuple = FILLERS
    prefix: float = 0.5
    filler: float = 0.5
    drop: float = 0.3

    def __post_init__(self):
        for name in ('fraction', 'prefix', 'filler', 'drop'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f'AugmentConfig.{name} must be in [0, 1], '
                                 f'got {getattr(self, name)}')
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown:
            raise ValueError(f'AugmentConfig.families has unknown families {unknown}; '
                             f'known: {list(FAMILIES)}')
        self.families = tuple(self.families)
        self.prefixes = tuple(self.prefixes)
        self.fillers = tuple(self.fillers)


def reword(instruction, phrasing, config: AugmentConfig, rng):
    """
    Reword an instruction outside its slots (see the module docstring).

    :return: the reworded instruction, or None when it cannot be split into its template or
        no change was drawn
    """
    parts = split_template(instruction, phrasing)
    if parts is None:
        return None
    changed = False
    # a template word is dropped only where the split is certain, never from a slot value
    certain = parts == split_template(instruction, phrasing, greedy=True)
    if rng.random() < config.drop and certain:
        # (part index, word index) of every template word
        words = [(i, j) for i in range(0, len(parts), 2)
                 for j, w in enumerate(parts[i].split(' ')) if re.search(r'[A-Za-z]', w)]
        if len(words) >= 3:
            i, j = words[int(rng.integers(len(words)))]
            tokens = parts[i].split(' ')
            trailing = re.sub(r'[A-Za-z\']+', '', tokens[j])  # keep punctuation ('there?')
            tokens[j] = trailing
            parts[i] = ' '.join(tokens)
            changed = True
    text = ''.join(parts).strip()
    text = re.sub(r' +([?.,:!])', r'\1', re.sub(r' {2,}', ' ', text)).lstrip(' ,:')
    if config.fillers and rng.random() < config.filler:
        filler = config.fillers[int(rng.integers(len(config.fillers)))]
        end = len(text.rstrip('?.!'))
        text = text[:end] + filler + text[end:]
        changed = True
    if config.prefixes and rng.random() < config.prefix:
        prefix = config.prefixes[int(rng.integers(len(config.prefixes)))]
        text = prefix + text[:1].lower() + text[1:]
        changed = True
    if not changed or not text:
        return None
    return text[:1].upper() + text[1:]


def augment_records(records, templates, config: AugmentConfig, rng) -> list:
    """
    Return ``records`` plus reworded copies of a ``config.fraction`` share of them.

    :param records: ``(sample, family, instruction)`` from ``load_records``
    :param templates: the ``Templates`` the samples were written with
    :param rng: numpy Generator
    """
    if config.fraction <= 0:
        return list(records)
    copies = []
    for sample, family, instruction in records:
        if family not in config.families or rng.random() >= config.fraction:
            continue
        kind, index, _ = sample['template'].split('/')
        phrasing = templates.kinds[kind]['instructions'][int(index)]
        reworded = reword(instruction, phrasing, config, rng)
        if reworded is not None:
            copies.append((sample, family, reworded))
    return list(records) + copies
