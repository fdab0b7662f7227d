"""leo-eval's summary: per-family metrics and QA accuracy per question kind (pure)."""

from leo_ros.sim.world import Task
from leo_ros.train.evaluate import grounding_line, kind_table, probe_grounding, summarise
import pytest


def _rows(kind, successes):
    return [{'family': 'qa', 'kind': kind, 'success': s, 'decision_ms': 10.0}
            for s in successes]


def test_qa_accuracy_per_kind_adds_up_to_the_family_figure():
    episodes = (_rows('qa_size', [True, False, False, True]) + _rows('qa_count', [True])
                + [{'family': 'nav', 'kind': 'nav', 'success': True, 'decision_ms': 5.0},
                   {'family': 'qa', 'skipped': 'no valid task'}])
    metrics = summarise(episodes)
    assert metrics['qa_accuracy'] == pytest.approx(3 / 5)
    assert metrics['qa_size_accuracy'] == 0.5 and metrics['qa_size_episodes'] == 4
    assert metrics['qa_count_accuracy'] == 1.0 and metrics['qa_count_episodes'] == 1
    assert 'nav_accuracy' not in metrics and metrics['skipped'] == 1
    table = kind_table(metrics)
    assert '| qa_count | 1 | 1.000 |' in table and '| qa_size | 4 | 0.500 |' in table


def test_rows_without_kinds_give_no_kind_table():
    metrics = summarise([{'family': 'qa', 'success': True, 'decision_ms': 1.0}])
    assert metrics['qa_accuracy'] == 1.0 and kind_table(metrics) == ''


@pytest.mark.parametrize('kind, answer, p_subject, hit', [
    ('qa_relation', 'Yes', 0.8, True), ('qa_relation', 'Yes', 0.2, False),
    ('qa_relation', 'No', 0.2, True), ('qa_relation', 'No', 0.8, False),
])
def test_grounding_probe_reads_a_relation_question_at_its_subject(kind, answer, p_subject, hit):
    task = Task('qa', 'Is the mug left of the box?', 0, target_ids=(4, 9), answer=answer,
                kind=kind)
    row = probe_grounding({4: [p_subject, 0.9], 9: [0.95, 0.9]}, task)
    assert row['grounding_hit'] is hit
    assert row['grounding'] == {'4': [p_subject, 0.9], '9': [0.95, 0.9]}


@pytest.mark.parametrize('task, hit', [
    (Task('qa', 'Which is larger, the mug or the box?', 0, (9,), 'The box', kind='qa_size'),
     True),
    (Task('qa', 'Which is larger, the mug or the box?', 0, (4,), 'The mug', kind='qa_size'),
     False),
    (Task('pick_place', 'Put the mug on the box.', 0, (4, 9), kind='pick_place'), True),
    (Task('qa', 'What is the mug on?', 0, (4, 2), 'The table', kind='qa_support'), False),
])
def test_grounding_probe_checks_the_top_object_against_the_targets(task, hit):
    row = probe_grounding({2: [0.1, 0.0], 4: [0.3, 0.9], 9: [0.6, 0.9]}, task)
    assert row['grounding_hit'] is hit


def test_grounding_probe_without_targets_scores_nothing():
    task = Task('qa', 'Is there a cup?', 0, (), 'No', kind='qa_existence')
    assert 'grounding_hit' not in probe_grounding({4: [0.3, 0.1]}, task)


def test_grounding_metrics_keep_relations_apart():
    episodes = [{'family': 'qa', 'kind': 'qa_relation', 'success': False, 'grounding_hit': True},
                {'family': 'qa', 'kind': 'qa_relation', 'success': False, 'grounding_hit': False},
                {'family': 'qa', 'kind': 'qa_size', 'success': True, 'grounding_hit': True},
                {'family': 'nav', 'kind': 'nav', 'success': True, 'grounding_hit': False},
                {'family': 'nav', 'kind': 'nav', 'success': True, 'grounding_hit': True}]
    metrics = summarise(episodes)
    assert metrics['grounding_top1'] == pytest.approx(2 / 3, abs=1e-4)  # rounded to 4 places
    assert metrics['grounding_episodes'] == 3
    assert metrics['qa_relation_grounding_accuracy'] == 0.5
    line = grounding_line(metrics)
    assert '0.667 of 3 episodes' in line and '0.500' in line
    assert grounding_line(summarise([{'family': 'qa', 'success': True}])) == ''
