"""The learned model on disk: a ROS 2 params YAML the predictor loads with ``--params-file``.

No ROS import. The file the trainer writes looks like this::

    # nn_one_node weights file, written by the trainer. Load it with:
    #   ros2 run nn_one_node predictor --ros-args --params-file FILE
    # The sha256 line must stay last: it covers every byte above it (truncation guard).
    /**:
      ros__parameters:
        num_features: 3
        activation: sigmoid
        weights: [0.5, -1.25, 3.0e-05]
        bias: 0.1
    # sha256: <64 hex digits: SHA-256 of every byte above this line>

* Floats are written ``repr``-exact (they read back bit for bit) and always with a '.', so that
  both YAML (1.1, which reads ``1e-05`` as a string) and ROS read them as doubles.
* ``save_weights_file`` is atomic: temporary file in the same directory, fsync, ``os.replace``,
  fsync of the directory. A crash leaves either the old file or the new one, never a mix.
* ``load_weights_file`` returns a complete, validated model or raises ``WeightsFileError``; it
  never returns part of a file. The checksum line detects truncation, which YAML alone cannot
  (a file cut inside ``bias: 0.125`` still parses, as ``bias: 0.12``).
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import re
import stat
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import yaml

from nn_one_node.model import ACTIVATIONS, check_activation

PathLike = Union[str, 'os.PathLike[str]']

HEADER = (
    '# nn_one_node weights file, written by the trainer. Load it with:\n'
    '#   ros2 run nn_one_node predictor --ros-args --params-file FILE\n'
    '# The sha256 line must stay last: it covers every byte above it (truncation guard).\n'
)
CHECKSUM_PREFIX = '# sha256: '
_CHECKSUM_LINE = re.compile(r'# sha256: ([0-9a-f]{64})\n\Z')
NODE_KEY = '/**'  # every node: the predictor (and the trainer) whatever their names
REQUIRED_KEYS = ('num_features', 'activation', 'weights', 'bias')


class WeightsFileError(ValueError):
    """The weights file is missing, truncated, malformed or holds an invalid model."""


class WeightsFileUnreadable(WeightsFileError):
    """The path exists but is not a regular file that can be read: the configuration's fault, not
    the file's (so the trainer must not move it aside as it does a malformed file)."""


@dataclass(frozen=True)
class WeightsFileContent:
    """A model read from a weights file: raw-feature ``weights`` (N,), ``bias``, ``activation``."""

    weights: np.ndarray
    bias: float
    activation: str
    num_features: int


def format_float(value: float) -> str:
    """Shortest round-trip text of a finite float, always with a '.' (``1.0``, ``3.0e-05``)."""
    text = repr(float(value))
    if not math.isfinite(float(value)):
        raise ValueError(f'not a finite number: {text}')
    mantissa, sep, exponent = text.partition('e')
    if '.' not in mantissa:
        mantissa += '.0'
    return mantissa + sep + exponent


def render_weights_file(weights: Sequence[float], bias: float, activation: str) -> str:
    """The full file text, checksum line included. Raises ValueError for an invalid model."""
    check_activation(activation)
    try:
        w = np.array(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError('weights must be a sequence of numbers') from None
    if w.ndim != 1 or w.shape[0] == 0:
        raise ValueError(f'weights must be a non-empty 1-D sequence, got shape {w.shape}')
    if not np.all(np.isfinite(w)):
        raise ValueError('weights contain NaN or infinite values: not written')
    try:
        b = float(bias)
    except (TypeError, ValueError):
        raise ValueError(f'bias must be a number, got {bias!r}') from None
    if not math.isfinite(b):
        raise ValueError(f'bias must be finite, got {bias!r}: not written')
    body = (
        HEADER
        + f'{NODE_KEY}:\n'
        + '  ros__parameters:\n'
        + f'    num_features: {w.shape[0]}\n'
        + f'    activation: {activation}\n'
        + f'    weights: [{", ".join(format_float(v) for v in w.tolist())}]\n'
        + f'    bias: {format_float(b)}\n'
    )
    return body + CHECKSUM_PREFIX + hashlib.sha256(body.encode('utf-8')).hexdigest() + '\n'


def remove_stale_temporaries(path: PathLike) -> List[str]:
    """Delete the temporaries a killed writer of ``path`` left (``.<name>.*.tmp`` beside it).

    ``save_weights_file`` removes its temporary on any error, so only a process killed inside a
    write leaves one; it is never read, but would pile up. Call it before the first write, with
    no other writer of ``path`` running (its temporary would go, and its rename fail). Returns
    the names removed; a file that vanishes meanwhile or cannot be removed is skipped.
    """
    path = os.path.abspath(os.fspath(path))
    directory, base = os.path.split(path)
    prefix = f'.{base}.'
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if name.startswith(prefix) and name.endswith('.tmp'):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                continue
            removed.append(name)
    return removed


def save_weights_file(path: PathLike, weights: Sequence[float], bias: float,
                      activation: str) -> None:
    """Write the model to ``path`` atomically, creating the parent directory if missing.

    Temporary file in the same directory, flush, fsync, ``os.replace`` onto ``path``, fsync of
    the directory. Raises ValueError (writing nothing) for non-finite values or a bad activation,
    OSError if the file system refuses; the temporary file is removed on any failure.
    """
    data = render_weights_file(weights, bias, activation).encode('utf-8')
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)  # keep the permissions of the file replaced
    except FileNotFoundError:
        mode = 0o644  # not mkstemp's 0600: a predictor run by another user must read it
    # A stop signal (Ctrl-C raises KeyboardInterrupt) landing inside mkstemp, after it created
    # the file and before the try below, would leave the temporary: the stop signals wait until
    # the name is known (the handler then runs inside the try, which removes it).
    blocked = (signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
               if _CAN_BLOCK else None)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp',
                                   dir=directory)
        if blocked is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            blocked = None
        with os.fdopen(fd, 'wb') as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if blocked is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        raise
    _fsync_directory(directory)


# The signals that stop a node; blocked only in the main thread (where Python runs handlers).
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_CAN_BLOCK = hasattr(signal, 'pthread_sigmask')


def _fsync_directory(directory: str) -> None:
    """Make the rename durable. Some file systems cannot fsync a directory; that is not fatal."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def load_weights_file(path: PathLike, num_features: Optional[int] = None,
                      require_checksum: bool = True) -> WeightsFileContent:
    """Read and validate a weights file; the whole model or ``WeightsFileError``, never a part.

    With ``require_checksum`` (the default, for files the trainer wrote) the last line must be
    the ``# sha256:`` line and match; ``require_checksum=False`` accepts a hand-written params
    file without it (if the line is there it is still checked). Such a file may use a node name
    instead of ``/**``, if exactly one node has ``ros__parameters``. ``num_features``, when given,
    must equal the file's. Extra parameters are ignored.
    """
    name = os.fspath(path)
    if os.path.exists(name) and not os.path.isfile(name):  # a directory; a FIFO would block
        raise WeightsFileUnreadable(f'weights file {name} is not a regular file')
    try:
        with open(name, 'rb') as f:
            raw = f.read()
    except FileNotFoundError:
        raise WeightsFileError(f'weights file {name} does not exist') from None
    except OSError as err:
        raise WeightsFileUnreadable(f'weights file {name} cannot be read: {err.strerror}') \
            from None
    try:
        return parse_weights_file(raw, num_features, require_checksum)
    except WeightsFileError as err:
        raise WeightsFileError(f'weights file {name}: {err}') from None


def parse_weights_file(raw: bytes, num_features: Optional[int] = None,
                       require_checksum: bool = True) -> WeightsFileContent:
    """``load_weights_file`` on the file's bytes (messages without the file name)."""
    if not raw.strip():
        raise WeightsFileError('is empty')
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError:
        raise WeightsFileError('is not UTF-8 text (corrupted?)') from None
    body = _verified_body(text, require_checksum)
    try:
        document = yaml.safe_load(body)
    except yaml.YAMLError as err:
        mark = getattr(err, 'problem_mark', None)
        where = f' at line {mark.line + 1}' if mark is not None else ''
        raise WeightsFileError(f'is not valid YAML{where}') from None
    except (ArithmeticError, AttributeError, LookupError, RecursionError, TypeError,
            ValueError) as err:
        # PyYAML's constructors let these escape on bad tagged values or impossible dates
        # ('!!int x', '2001-13-45'), and the parser recurses once per nesting level.
        raise WeightsFileError(f'is not valid YAML ({type(err).__name__}: {err})') from None
    return _content(_parameters(document), num_features)


def _verified_body(text: str, require_checksum: bool) -> str:
    """The text above the checksum line, after checking it; raises WeightsFileError."""
    if text.startswith(CHECKSUM_PREFIX):
        start = 0
    else:
        start = text.rfind('\n' + CHECKSUM_PREFIX)
        start = start + 1 if start >= 0 else -1
    if start < 0:
        if text.startswith(HEADER.split('\n', 1)[0]):  # the trainer's: it had the line
            raise WeightsFileError(
                f"was written by the trainer but has no '{CHECKSUM_PREFIX.strip()}' line at "
                'its end: truncated')
        if require_checksum:
            raise WeightsFileError(
                f"has no '{CHECKSUM_PREFIX.strip()}' line at its end: truncated, or not written "
                'by the trainer')
        return text
    body, line = text[:start], text[start:]
    match = _CHECKSUM_LINE.match(line)
    if match is None:
        raise WeightsFileError(
            f"its '{CHECKSUM_PREFIX.strip()}' line is damaged or not the last line "
            '(truncated or edited?)')
    if hashlib.sha256(body.encode('utf-8')).hexdigest() != match.group(1):
        raise WeightsFileError('checksum mismatch: the file was truncated, corrupted or edited')
    return body


def _parameters(document: Any) -> Dict[Any, Any]:
    """The ``ros__parameters`` mapping of the (single) node in the file."""
    if not isinstance(document, dict):
        raise WeightsFileError(
            f"expected a mapping '{NODE_KEY}: ros__parameters: ...', got "
            f'{type(document).__name__}')
    nodes = {k: v for k, v in document.items()
             if isinstance(v, dict) and isinstance(v.get('ros__parameters'), dict)}
    if NODE_KEY in nodes:
        return nodes[NODE_KEY]['ros__parameters']
    if len(nodes) == 1:
        return next(iter(nodes.values()))['ros__parameters']
    if not nodes:
        raise WeightsFileError(f"has no '{NODE_KEY}: ros__parameters:' section")
    raise WeightsFileError(
        f"has ros__parameters for several nodes ({', '.join(map(str, nodes))}) and none for "
        f"'{NODE_KEY}': cannot tell which one holds the model")


def _content(params: Dict[Any, Any], expected: Optional[int]) -> WeightsFileContent:
    """Validate the parameters and build the content; raises WeightsFileError."""
    missing = [k for k in REQUIRED_KEYS if k not in params]
    if missing:
        raise WeightsFileError(f'misses parameter(s) {", ".join(missing)}')
    n = params['num_features']
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise WeightsFileError(f'num_features must be an integer >= 1, got {n!r}')
    activation = params['activation']
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise WeightsFileError(
            f'activation must be one of {", ".join(ACTIVATIONS)}, got {activation!r}')
    weights = params['weights']
    if not isinstance(weights, list) or not all(isinstance(v, float) for v in weights):
        raise WeightsFileError(
            'weights must be a list of floating-point numbers written with a decimal point '
            f'(ROS reads 1 as an integer, 1.0 as a double), got {weights!r:.200}')
    bias = params['bias']
    if not isinstance(bias, float):
        raise WeightsFileError(
            f'bias must be a floating-point number written with a decimal point, got {bias!r}')
    w = np.array(weights, dtype=np.float64)
    if not (np.all(np.isfinite(w)) and math.isfinite(bias)):
        raise WeightsFileError('weights or bias contain NaN or infinite values')
    if w.shape[0] != n:
        raise WeightsFileError(f'has {w.shape[0]} weights but num_features is {n}')
    if expected is not None and n != expected:
        raise WeightsFileError(f'holds a model for {n} features, {expected} expected')
    w.flags.writeable = False
    return WeightsFileContent(w, float(bias), activation, int(n))


@dataclass(frozen=True)
class Resumed:
    """What ``resume_weights_file`` found: the model (None: start fresh), the lines to log as
    (level, text), and ``error``: why the file was unusable ('' if it was not)."""

    content: Optional[WeightsFileContent]
    log: List[Tuple[str, str]]
    error: str = ''


def resume_weights_file(path: PathLike, num_features: int) -> Resumed:
    """The model to resume from ``path`` at start, as the trainer does it: temporaries left by a
    writer killed mid-write are removed; a missing file means a fresh start; a malformed one is
    moved aside (``<path>.corrupt-<time>``, never overwritten or lost) and the start is fresh.
    ``WeightsFileUnreadable`` (a directory, no permission) propagates: it is the configuration's
    fault, and what it names is someone else's, not to be moved.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> resume_weights_file(os.path.join(d, 'w.yaml'), 2).log[-1][1].startswith('no weights')
    True
    >>> with open(os.path.join(d, 'w.yaml'), 'w') as f:
    ...     _ = f.write('not: [a model')
    >>> r = resume_weights_file(os.path.join(d, 'w.yaml'), 2)
    >>> r.content is None, r.log[-1][0], sorted(os.listdir(d))[0].startswith('w.yaml.corrupt-')
    (True, 'error', True)
    """
    path = os.fspath(path)
    log: List[Tuple[str, str]] = []
    stale = remove_stale_temporaries(path)
    if stale:
        log.append(('info', f'removed {len(stale)} temporary file(s) of {path} left by a writer '
                            f'killed mid-write: {", ".join(sorted(stale))}'))
    if not os.path.exists(path):
        log.append(('info', f'no weights file at {path} yet: starting fresh'))
        return Resumed(None, log)
    try:
        return Resumed(load_weights_file(path, num_features=num_features), log)
    except WeightsFileUnreadable:
        raise
    except WeightsFileError as err:  # read, and malformed
        stamp = f'{time.strftime("%Y%m%d-%H%M%S")}-{time.time_ns() % 10**9:09d}'
        kept = f'{path}.corrupt-{stamp}'  # unique: two in one second do not collide
        try:
            os.replace(path, kept)
            where = f'moved aside to {kept}'
        except OSError as move_err:
            where = f'could not be moved aside ({move_err})'
        log.append(('error', f'weights file {path} is unusable ({err}); it was {where}; '
                             'starting fresh'))
        return Resumed(None, log, str(err))
