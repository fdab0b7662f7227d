"""leo-eval's summary: per-family metrics and QA accuracy per question kind (pure)."""

from leo_ros.train.evaluate import kind_table, summarise
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
