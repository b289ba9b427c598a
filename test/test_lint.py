"""ruff, with the rules of ament_flake8 (ruff.toml): the code base stays lint-clean."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    ruff = shutil.which('ruff') or str(Path(sys.executable).with_name('ruff'))
    paths = [p for p in ('nn_one_node', 'test', 'launch', 'bench', 'setup.py')
             if (ROOT / p).exists()]
    proc = subprocess.run([ruff, 'check', '--no-cache', *paths], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
