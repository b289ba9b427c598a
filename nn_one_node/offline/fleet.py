"""Several robots' bags, learned as the fleet trainer learns live: the robots found in the bags
by their namespaces, one sample source a robot (the assembler's code under the robot's
namespace, or its recorded labeled_samples), their rows interleaved in bag-time order into one
``TrainerCore``, and each robot's samples scored apart.

* **Which robots.** ``--fleet`` patterns are the trainer's ``fleet`` parameter's: ``/r1``,
  ``/r*``, ``/warehouse/amr_?``, matched name by name (``*`` does not cross a ``/``; the root
  namespace is no robot's). A robot is a matching namespace under which a bag holds one of the
  topics that the params file names relatively (``scan`` of robot ``/r1`` is ``/r1/scan``), with
  its type; every topic it needs is then checked as for one robot (``commands.prepare``).
* **One stream.** ``FleetSource`` is one source to ``offline.replay.Replay``: each message goes
  to the robot whose topic it is, each robot's timers tick on the one bag time, and the rows a
  robot settles come out tagged with it (``RobotRows``), so that ``FleetScores`` counts and
  scores them per robot, by the model in force before they are learned, as the trainer does.

>>> namespace_matches('/r1', ['/r*']), namespace_matches('/r1/arm', ['/r*'])
(True, False)
>>> robot_namespaces({'/r1/scan': ('sensor_msgs/msg/LaserScan', 9),
...                   '/r2/scan': ('sensor_msgs/msg/LaserScan', 9),
...                   '/x/scan': ('sensor_msgs/msg/LaserScan', 9),
...                   '/r3/scan': ('std_msgs/msg/Float64', 9)},
...                  [('scan', 'sensor_msgs/msg/LaserScan')], ['/r*'])
['/r1', '/r2']
>>> rows = RobotRows.tag(np.ones((2, 3)), '/r1')
>>> rows.robot, rows[:1].robot, rows.reshape(1, -1).robot
('/r1', '/r1', '/r1')
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from nn_one_node.model import forward
from nn_one_node.names import namespace_matches  # the live fleet trainer's rule
from nn_one_node.offline.scores import Scores


def pattern_list(given: Iterable[str]) -> List[str]:
    """``--fleet`` values (each may hold several, separated by commas) as absolute patterns;
    ValueError for an empty one or one with an empty name."""
    out = []
    for text in given:
        for item in text.split(','):
            item = item.strip()
            if not item:
                raise ValueError(f'--fleet {text!r} holds an empty pattern')
            pattern = item if item.startswith('/') else '/' + item
            if pattern == '/' or '' in pattern[1:].split('/'):
                raise ValueError(f'--fleet {item!r} is no namespace pattern (e.g. /r* or '
                                 '/warehouse/amr_*)')
            out.append(pattern)
    return out


def robot_namespaces(topics: Mapping[str, Tuple[str, int]],
                     relative: Sequence[Tuple[str, str]],
                     patterns: Sequence[str]) -> List[str]:
    """The namespaces matching ``patterns`` under which ``topics`` (a bag's: name -> (type,
    count)) hold one of the ``relative`` names (name as written, type), sorted."""
    found = set()
    for topic, (msgtype, _count) in topics.items():
        for written, wanted in relative:
            if msgtype == wanted and topic.endswith('/' + written):
                ns = topic[:-len(written) - 1] or '/'
                if namespace_matches(ns, patterns):
                    found.add(ns)
    return sorted(found)


class RobotRows(np.ndarray):
    """Labeled rows that know the robot they are from (``robot``), through slicing and
    reshaping."""

    robot: Optional[str] = None

    @classmethod
    def tag(cls, rows: np.ndarray, robot: str) -> 'RobotRows':
        out = np.asarray(rows).view(cls)
        out.robot = robot
        return out

    def __array_finalize__(self, obj: Any) -> None:
        self.robot = getattr(obj, 'robot', None)


class FleetSource:
    """The robots' sources as one (``Replay``'s interface): ``inputs`` and ``needs`` of all,
    each message to the robots whose input it is, every robot's timers on the one clock, the
    rows each settles tagged with the robot."""

    def __init__(self, sources: Mapping[str, Any]) -> None:
        self.sources = dict(sources)
        first = next(iter(self.sources.values()))
        self.num_features = first.num_features
        self.feature_names = list(first.feature_names)
        self.inputs: Dict[str, str] = {}
        self._owners: Dict[str, List[Tuple[str, Any]]] = {}
        self.needs = []
        for ns, source in self.sources.items():
            self.needs += source.needs
            for topic, msgtype in source.inputs.items():
                self.inputs[topic] = msgtype
                self._owners.setdefault(topic, []).append((ns, source))

    @property
    def _next_ns(self) -> Optional[int]:  # the earliest timer of any robot (Replay asks)
        due = [s._next_ns for s in self.sources.values()
               if getattr(s, '_next_ns', None) is not None]
        return min(due) if due else None

    def on_message(self, topic: str, msg: Any, now_ns: int) -> List[np.ndarray]:
        out: List[np.ndarray] = []
        for ns, source in self._owners.get(topic, ()):
            out += [RobotRows.tag(r, ns) for r in source.on_message(topic, msg, now_ns)]
        return out

    def advance(self, now_ns: int) -> List[np.ndarray]:
        out: List[np.ndarray] = []
        for ns, source in self.sources.items():
            out += [RobotRows.tag(r, ns) for r in source.advance(now_ns)]
        return out

    def jumped_back(self, now_ns: int) -> None:
        for source in self.sources.values():
            source.jumped_back(now_ns)

    def refusal_summary(self) -> str:
        return '; '.join(f'robot {ns}: {text}' for ns, source in self.sources.items()
                         if (text := source.refusal_summary()))

    def counters(self) -> Dict[str, Any]:
        return {ns: source.counters() for ns, source in self.sources.items()}


class FleetScores:
    """Each robot's rows counted and scored (``scores.Scores``) by the learner's model in force
    before they are learned; then handed to the learner (``add(rows, now_ns)``, as
    ``Replay``'s ``on_rows``)."""

    def __init__(self, learner: Any, robots: Iterable[str]) -> None:
        self.learner = learner
        self.scores: Dict[str, Scores] = {ns: Scores() for ns in robots}

    def add(self, rows: np.ndarray, now_ns: int) -> None:
        learner, n = self.learner, self.learner.num_features
        plain = np.asarray(rows)
        self.scores[rows.robot].add(
            forward(plain[:, :n], learner.weights, learner.bias, learner.activation), plain[:, n])
        learner.add(plain, now_ns)

    def summary(self) -> Dict[str, Dict[str, Any]]:
        return {ns: s.summary() for ns, s in self.scores.items()}
