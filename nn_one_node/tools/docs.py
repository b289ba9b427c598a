"""The README's parameter tables, generated from the nodes' parameter tables (one source).

``python -m nn_one_node.tools.docs README.md`` rewrites the blocks between
``<!-- params:NODE -->`` and ``<!-- /params:NODE -->``; ``--check`` only reports drift
(test/package/test_readme.py runs it).
"""

from __future__ import annotations

import re
import sys
from typing import Dict, List

from nn_one_node.parameters import NUM_FEATURES, ParamSpec


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
    from nn_one_node.nodes import assembler as assembler_node
    from nn_one_node.nodes import predictor as predictor_node
    from nn_one_node.nodes import trainer as trainer_node
    tables = {
        'predictor': table([NUM_FEATURES] + predictor_node.predictor_params(1)),
        'trainer': table([NUM_FEATURES] + trainer_node.trainer_params(1)),
        'assembler': table(assembler_node.assembler_params()),
    }
    try:
        from nn_one_node.nodes import sim_sensor as sim_sensor_node
    except ImportError:
        return tables
    specs = getattr(sim_sensor_node, 'sim_sensor_params', None)
    if specs is not None:
        tables['sim_sensor'] = table(specs())
    from nn_one_node.nodes import sim_robot as sim_robot_node
    tables['sim_robot'] = table(sim_robot_node.sim_robot_params())
    return tables


def render(text: str) -> str:
    for node, body in node_tables().items():
        pattern = re.compile(rf'(<!-- params:{node} -->\n).*?(<!-- /params:{node} -->)', re.S)
        text = pattern.sub(lambda m: m.group(1) + body + '\n' + m.group(2), text)
    return text


def main(argv: List[str]) -> int:
    check = '--check' in argv
    paths = [a for a in argv if not a.startswith('--')] or ['README.md']
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
              'run python -m nn_one_node.tools.docs README.md')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
