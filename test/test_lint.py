"""Lint as tests: ament's flake8 (99 columns, single quotes, import order) and pep257 rules."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = [str(ROOT / name) for name in ('leo_ros', 'test', 'launch') if (ROOT / name).exists()]


@pytest.mark.linter
def test_flake8():
    from ament_flake8.main import main_with_errors
    code, errors = main_with_errors(argv=PATHS)
    assert code == 0, f'flake8 found {len(errors)} problem(s):\n' + '\n'.join(errors)


@pytest.mark.linter
def test_pep257():
    from ament_pep257.main import main
    assert main(argv=PATHS) == 0, 'pep257 found problems (see output above)'
