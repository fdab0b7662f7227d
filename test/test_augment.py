"""Reworded training instructions (leo_ros.train.augment): pure, no ROS."""

import re

from leo_ros.data.templates import Templates
from leo_ros.train.augment import augment_records, AugmentConfig, reword, split_template
import numpy as np
import pytest

CASES = [
    ('How many {categories} are there?', {'categories': 'bowls'}),
    ('Is it true that {target} is {relation} {anchor}?',
     {'target': 'the red mug', 'relation': 'behind', 'anchor': 'the table'}),
    ('Which one is bigger: {target} or {other}?',
     {'target': 'the blue sphere', 'other': 'the largest box'}),
    ('{target}: what color is it?', {'target': 'the white plate'}),
    ('Put {target} on {destination}.', {'target': 'the mug', 'destination': 'the shelf'}),
]


def _render(phrasing, values):
    text = phrasing.format(**values)
    return text[:1].upper() + text[1:]


@pytest.mark.parametrize('phrasing, values', CASES)
def test_split_template_separates_the_slot_values(phrasing, values):
    instruction = _render(phrasing, values)
    parts = split_template(instruction, phrasing)
    assert ''.join(parts) == instruction
    slots = re.findall(r'\{([a-z_]+)\}', phrasing)
    assert [p.lower() for p in parts[1::2]] == [values[s].lower() for s in slots]


def test_split_template_refuses_another_template():
    assert split_template('Go to the mug.', 'How many {categories} are there?') is None


@pytest.mark.parametrize('phrasing, values', CASES)
def test_rewording_keeps_every_slot_value_in_order(phrasing, values):
    instruction = _render(phrasing, values)
    slots = re.findall(r'\{([a-z_]+)\}', phrasing)
    config = AugmentConfig(fraction=1.0, prefix=0.5, filler=0.5, drop=0.5)
    rng = np.random.default_rng(1)
    changed = set()
    for _ in range(60):
        text = reword(instruction, phrasing, config, rng)
        if text is None:
            continue
        changed.add(text)
        assert text != instruction and text[:1].isupper()
        assert '  ' not in text and ' ?' not in text and ' .' not in text
        cursor = 0
        for slot in slots:
            found = text.lower().find(values[slot].lower(), cursor)
            assert found >= 0, (text, values[slot])
            cursor = found + len(values[slot])
    assert len(changed) >= 10


@pytest.mark.parametrize('switch, expect', [('prefix', r'^(Please|Hey|Okay|Robot|Now|Quick|'
                                                       r'Next|I have|Listen)'),
                                            ('filler', r'(please|for me|right now|in this room|'
                                                       r'from where you are|if you can|now|'
                                                       r'around you)\?$')])
def test_each_rewording_does_what_it_says(switch, expect):
    config = AugmentConfig(fraction=1.0, prefix=float(switch == 'prefix'),
                           filler=float(switch == 'filler'), drop=0.0)
    text = reword('How many bowls are there?', 'How many {categories} are there?', config,
                  np.random.default_rng(0))
    assert re.search(expect, text), text
    assert 'bowls' in text


@pytest.mark.parametrize('instruction, phrasing', [
    ('Put the mug on the table on the shelf.', 'Put {target} on {destination}.'),
    ('Is the mug left of the box behind the table?', 'Is {target} {relation} {anchor}?')])
def test_no_word_is_dropped_where_slot_values_are_uncertain(instruction, phrasing):
    config = AugmentConfig(fraction=1.0, prefix=0.0, filler=0.0, drop=1.0)
    assert split_template(instruction, phrasing) != split_template(instruction, phrasing,
                                                                   greedy=True)
    assert reword(instruction, phrasing, config, np.random.default_rng(0)) is None


def test_dropping_removes_one_template_word_only():
    config = AugmentConfig(fraction=1.0, prefix=0.0, filler=0.0, drop=1.0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        text = reword('How many bowls are there?', 'How many {categories} are there?', config,
                      rng)
        words = text.rstrip('?').lower().split()
        assert 'bowls' in words and len(words) == 4 and text.endswith('?')


def test_augment_records_adds_copies_of_the_chosen_families_only():
    templates = Templates.load()
    phrasing = templates.kinds['qa_count']['instructions'][0]
    nav_phrasing = templates.kinds['nav']['instructions'][0]
    qa = {'template': 'qa_count/0/0', 'answer': '2'}
    nav = {'template': 'nav/0/0', 'answer': 'Going to the mug.'}
    records = ([(qa, 'qa', _render(phrasing, {'categories': 'bowls'}))] * 50
               + [(nav, 'nav', _render(nav_phrasing, {'target': 'the mug'}))] * 50)
    config = AugmentConfig(fraction=1.0, families=('qa',))
    out = augment_records(records, templates, config, np.random.default_rng(0))
    assert out[:100] == records
    copies = out[100:]
    assert 30 <= len(copies) <= 50
    assert all(sample is qa and family == 'qa' and 'bowls' in text
               for sample, family, text in copies)
    assert augment_records(records, templates, AugmentConfig(), np.random.default_rng(0)) \
        == records


@pytest.mark.parametrize('kwargs, match', [({'fraction': 1.5}, 'fraction'),
                                           ({'drop': -0.1}, 'drop'),
                                           ({'families': ('qa', 'dance')}, 'dance')])
def test_config_names_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AugmentConfig(**kwargs)
