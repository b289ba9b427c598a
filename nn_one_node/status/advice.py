"""What to do about each WARN the nodes put in ``/diagnostics``: one line per kind of problem,
found by the start of its text (the words the nodes write: ``assembly.assembler.problems``,
``learning.health``, ``learning.deployment.problem``, the predictor's refusals). doc/status.md
says the same at more length, with an example of each.

>>> print(advice('no row published for 3.9 s (a row needs every input younger than max_age '
...              '0.5 s): scan: no value yet from scan/ranges[0] (40 message(s), none usable)'))
an entry reads nothing from its messages: a field, index or joint name that is not in them \
(compare the entry with `ros2 topic echo <topic> --once`)
>>> advice('something no one wrote yet')
''
"""

from __future__ import annotations

import re
from typing import List, Tuple

# (pattern searched in the problem's text, what to do); the first that matches gives the advice,
# so the narrower patterns of one kind come first.
ADVICE: List[Tuple[str, str]] = [
    (r'^no row published.*no value yet from',
     'an entry reads nothing from its messages: a field, index or joint name that is not in '
     'them (compare the entry with `ros2 topic echo <topic> --once`)'),
    (r'^no row published.*no message yet on',
     'an input topic has no publisher of that type: check its name (namespace, remapping) and '
     'type with `ros2 topic info -v <topic>`, and that its driver runs'),
    (r'^no row published.*stamped .* behind the clock',
     'messages arrive but their stamps are older than max_age: synchronise the clocks '
     "(chrony), or raise that input's max_age"),
    (r'^no row published',
     'an input is older than its max_age: the inputs table shows which (rate, age); raise '
     "max_age above that input's period, or fix its publisher"),
    (r'^rows skipped on',
     'an input arrives less often than its max_age allows: raise max_age (for that input) '
     'above its period, or its rate'),
    (r'^no labeled sample on .* since the trainer started',
     'no labels reach the trainer: the label topic is silent or never joins a row (see the '
     "assembler's label input and labels joined/unmatched); check the label's topic name"),
    (r'^no labeled sample on',
     "the labels stopped: is the label's publisher still running? (the assembler's label "
     'input shows its rate and age)'),
    (r'^every labeled sample refused',
     'rows reach the trainer and are refused: the reason says what to change (num_features '
     "equal to the assembler's features; labels 0/1 for the sigmoid)"),
    (r'^prequential accuracy .* below the constant guess',
     'the model predicts worse than always answering the majority class: check label_delay '
     '(a label joined to the wrong moment) and features that drift like a clock; '
     '~/reset learns afresh'),
    (r'^no update deployed',
     'every update fails the gate: the data may not hold the rule (see last update), or '
     'learning_rate is unsuitable; ~/train_now answers why'),
    (r'^predictor .* is not up',
     "the trainer's predictor_node is not running (or has another name/namespace): start it, "
     'or set predictor_node'),
    (r'^predictor .* refused',
     'the predictor refuses the model: most often num_features differs between the trainer '
     'and the predictor'),
    (r'^predictor .* did not confirm',
     'the predictor does not answer its parameter service in time: an overloaded machine, or '
     'raise deploy_timeout'),
    (r'^predictor .* served a model other',
     "something else sets the predictor's weights (by hand, or another trainer): the trainer "
     'deploys its model again'),
    (r"^robot .*: accuracy .* against the fleet's",
     "this robot's labels disagree with the rest of the fleet's: compare its inputs with "
     "another robot's (`status` in its namespace), its sensor's mounting and calibration, and "
     'that its label topic is the same signal as on the others'),
    (r'^\d+ messages refused; last',
     'features messages the predictor cannot use: num_features must equal the number of '
     "values a features row has (the assembler's feature_names)"),
    (r'^cannot write',
     "the weights file cannot be written: check the path and its directory's permissions"),
    (r'^no /diagnostics from',
     'the node stopped or hangs: see its output, `ros2 node list`; a longer diagnostics_period '
     'than the one shown makes this too'),
]

_COMPILED = [(re.compile(pattern, re.S), text) for pattern, text in ADVICE]


def advice(problem: str) -> str:
    """What to do about ``problem`` (a problem's text as a node wrote it); '' if unknown."""
    for pattern, text in _COMPILED:
        if pattern.search(problem):
            return text
    return ''
