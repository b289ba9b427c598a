"""The doc pages' parameter tables, generated from the nodes' parameter tables (one source).

Each node's page ``doc/nodes/NODE.md`` holds its table between ``<!-- params:NODE -->`` and
``<!-- /params:NODE -->``. From the repository root,
``python -m nn_one_node.tools.docs`` rewrites every page's table;
``python -m nn_one_node.tools.docs PATH...`` rewrites the tables in those files (any file with
such markers); ``--check`` only reports drift (test/package/test_docs.py checks the same).

>>> from nn_one_node.parameters import ParamSpec
>>> print(table([ParamSpec('rate', 20.0, 'Rows per second.', float_range=(0.001, 1000.0))]))
| name | type | default | range | read-only | meaning |
| --- | --- | --- | --- | --- | --- |
| `rate` | double | `20.0` | 0.001 .. 1000 | no | Rows per second. |
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Dict, List

from nn_one_node.parameters import NUM_FEATURES, ParamSpec

# Each node's page, relative to the repository root.
PAGES = {node: f'doc/nodes/{node}.md'
         for node in ('predictor', 'trainer', 'assembler', 'sim_sensor', 'sim_robot')}


def _default(spec: ParamSpec) -> str:
    value = spec.default
    if spec.name == 'weights':
        return '`[0.0] * num_features`'
    if isinstance(value, str):
        return f"`'{value}'`" if value else "`''`"
    if isinstance(value, bool):
        return f'`{str(value).lower()}`'
    return f'`{value!r}`'


def _range(spec: ParamSpec) -> str:
    parts = []
    if spec.int_range is not None:
        lo, hi = spec.int_range
        parts.append(f'{lo} .. {hi}')
    elif spec.float_range is not None:
        lo, hi = spec.float_range
        parts.append(f'{lo:g} .. {hi:g}')
    if spec.constraints:
        parts.append(spec.constraints)
    return ', '.join(parts)


def table(specs: List[ParamSpec]) -> str:
    rows = ['| name | type | default | range | read-only | meaning |',
            '| --- | --- | --- | --- | --- | --- |']
    for spec in specs:
        kind = type(spec.default).__name__
        kind = spec.type_name or {'list': 'double[]', 'float': 'double',
                                  'str': 'string'}.get(kind, kind)
        cells = [f'`{spec.name}`', kind, _default(spec), _range(spec),
                 'yes' if spec.read_only else 'no', spec.description]
        rows.append('| ' + ' | '.join(c.replace('|', '\\|') for c in cells) + ' |')
    return '\n'.join(rows)


def node_tables() -> Dict[str, str]:
    """Every node's parameter table, rendered, by node name (the keys of PAGES)."""
    from nn_one_node.nodes import assembler as assembler_node
    from nn_one_node.nodes import predictor as predictor_node
    from nn_one_node.nodes import sim_robot as sim_robot_node
    from nn_one_node.nodes import sim_sensor as sim_sensor_node
    from nn_one_node.nodes import trainer as trainer_node
    return {
        'predictor': table([NUM_FEATURES] + predictor_node.predictor_params(1)),
        'trainer': table([NUM_FEATURES] + trainer_node.trainer_params(1)),
        'assembler': table(assembler_node.assembler_params()),
        'sim_sensor': table(sim_sensor_node.sim_sensor_params()),
        'sim_robot': table(sim_robot_node.sim_robot_params()),
    }


def render(text: str) -> str:
    """``text`` with every ``<!-- params:NODE -->`` block it holds replaced by NODE's table."""
    for node, body in node_tables().items():
        pattern = re.compile(rf'(<!-- params:{node} -->\n).*?(<!-- /params:{node} -->)', re.S)
        text = pattern.sub(lambda m: m.group(1) + body + '\n' + m.group(2), text)
    return text


def missing(root: Path) -> List[str]:
    """The nodes whose page under ``root`` has no table block (or does not exist)."""
    lacking = []
    for node, page in PAGES.items():
        path = root / page
        if not path.is_file() or f'<!-- params:{node} -->' not in path.read_text():
            lacking.append(f'{page} (params:{node})')
    return lacking


def main(argv: List[str]) -> int:
    check = '--check' in argv
    paths = [a for a in argv if not a.startswith('--')]
    if not paths:
        lacking = missing(Path.cwd())
        if lacking:
            print(f'no parameter table block in {", ".join(lacking)}: run this from the '
                  'repository root, or give the pages as arguments', file=sys.stderr)
            return 1
        paths = list(PAGES.values())
    stale = []
    for path in paths:
        with open(path) as f:
            text = f.read()
        new = render(text)
        if new != text:
            stale.append(path)
            if not check:
                with open(path, 'w') as f:
                    f.write(new)
    if check and stale:
        print(f'parameter tables out of date in {", ".join(stale)}: '
              'run python -m nn_one_node.tools.docs', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
