"""The open vocabulary: words the training data never holds, and the rewording that uses them."""

from pathlib import Path
import re

from leo_ros.data.templates import Templates
from leo_ros.train.lexicon import FUNCTION_WORDS, Lexicon, template_words, training_words
from leo_ros.vocabulary import CATEGORIES, COLORS, plural
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LEXICON = ROOT / 'config' / 'open_vocabulary.yaml'
PHRASINGS = ROOT / 'config' / 'open_vocabulary_phrasings.yaml'
TRAINING = (ROOT / 'config' / 'templates_train.yaml',
            ROOT / 'leo_ros' / 'data' / 'templates' / 'default.yaml')


@pytest.fixture(scope='module')
def trained():
    return training_words(TRAINING)


def test_training_words_hold_what_the_data_says(trained):
    # the templates, the world's words, generated answers and the refusals' nouns
    assert {'go', 'describe', 'mug', 'mugs', 'shelves', 'grey', 'sofa', 'three', 'left',
            'behind', 'largest', 'see'} <= trained
    assert 'crimson' not in trained


def test_open_vocabulary_words_never_occur_in_the_training_data(trained):
    lexicon = Lexicon.load(LEXICON)
    synonyms = lexicon.words() - FUNCTION_WORDS
    instructions = template_words(PHRASINGS, parts=('instructions',)) - FUNCTION_WORDS
    assert len(synonyms) >= 40 and len(instructions) >= 20
    assert sorted(synonyms & trained) == []
    assert sorted(instructions & trained) == []


def test_open_vocabulary_phrasings_cover_the_evaluated_kinds():
    phrasings = Templates.load(PHRASINGS)
    for kind in ('nav', 'pick_place', 'plan', 'qa_color', 'object_caption'):
        assert phrasings.has(kind) and phrasings.kinds[kind]['instructions']


def test_the_lexicon_replaces_every_category_and_colour():
    lexicon = Lexicon.load(LEXICON)
    assert set(lexicon.replacements) == set(CATEGORIES) | {plural(c) for c in CATEGORIES} \
        | set(COLORS)
    world_words = set(lexicon.replacements)
    rng = np.random.default_rng(0)
    for instruction in ('Go to the red mug.', 'How many orange spheres are there?',
                        'Put the grey box on the white table.', 'Is the bowl left of the shelf?'):
        rewritten = lexicon.rewrite(instruction, rng)
        words = set(re.findall(r'[a-z]+', rewritten.lower()))
        assert not words & world_words, rewritten
        assert words - FUNCTION_WORDS <= set(re.findall(r'[a-z]+', instruction.lower())) \
            | lexicon.words(), rewritten


def test_rewording_fixes_the_article():
    lexicon = Lexicon({'colors': {'red': ['amber']}, 'categories': {'mug': {'singular': ['cup']}}})
    assert lexicon.rewrite('Is there a red mug?', np.random.default_rng(0)) == \
        'Is there an amber cup?'


@pytest.mark.parametrize('data, match', [
    ({'categories': {'lamp': {'singular': ['light']}}}, 'unknown categories'),
    ({'colors': {'teal': ['cyan']}}, 'unknown categories or colours'),
    ({}, 'no synonyms'),
])
def test_a_bad_lexicon_is_named(data, match):
    with pytest.raises(ValueError, match=match):
        Lexicon(data, source='lexicon.yaml')


def test_a_missing_lexicon_file_is_named(tmp_path):
    with pytest.raises(ValueError, match='lexicon file not found'):
        Lexicon.load(tmp_path / 'none.yaml')
