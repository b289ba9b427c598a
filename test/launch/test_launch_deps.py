"""One test per launch_testing module: skipped, with the reason, where its dependencies are
missing (the module itself is then not collected); elsewhere it checks that the module imports
and holds a launch test, so that a broken import cannot pass for a missing dependency."""

import importlib.util
from pathlib import Path

import pytest
from launch_deps import NEEDS, missing

HERE = Path(__file__).resolve().parent


def test_every_launch_test_module_is_listed():
    assert sorted(p.name for p in HERE.glob('test_*launch*.py')
                  if p.name != 'test_launch_deps.py') == sorted(NEEDS)


@pytest.mark.parametrize('module', sorted(NEEDS))
def test_launch_test_module_can_run(module):
    reason = missing(module)
    if reason:
        pytest.skip(f'{module}: {reason}')
    spec = importlib.util.spec_from_file_location(module[:-3], HERE / module)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    marks = [m.name for m in getattr(mod.generate_test_description, 'pytestmark', [])]
    assert 'launch_test' in marks
