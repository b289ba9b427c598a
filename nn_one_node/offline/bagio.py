"""Recorded rosbag2 bags (mcap or sqlite3), read and written with ``rosbags``: no ROS install.

No rclpy import. ``Recording`` opens one or more bags as one time-ordered stream, the way
``ros2 bag play`` would replay them, and never loads a bag whole: ``messages`` yields
``(topic, t_ns, msg)`` one at a time, deserializing only the topics asked for, with the receive
timestamp the recorder stored (nanoseconds of the recorder's clock). rosbags' deserialized
messages are dataclasses whose arrays are numpy arrays, so the package's duck-typed code (the
assembler, ``conversions.matrix_from_msg``) takes them as it takes rclpy messages.

Everything that can go wrong with a bag (missing, not a bag, truncated, corrupt, a type without a
definition) is raised as ``BagError``, whose text names the bag and what is wrong with it.

``BagWriter`` writes bags for tests, benchmarks and recordings, in either storage::

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with BagWriter(root / 'run', storage='mcap') as bag:
    ...     bag.write('/slip', 'std_msgs/msg/Bool', 1_000_000_000, bag.make('std_msgs/msg/Bool',
    ...                                                                  data=True))
    >>> with Recording([root / 'run']) as rec:
    ...     print(rec.topics())
    ...     print([(topic, t, msg.data) for topic, t, msg in rec.messages()])
    {'/slip': ('std_msgs/msg/Bool', 1)}
    [('/slip', 1000000000, True)]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

PathLike = Union[str, 'os.PathLike[str]']
STORAGES = ('mcap', 'sqlite3')


class BagError(ValueError):
    """A bag that cannot be read (missing, truncated, corrupt, unknown type); the text says why
    and names the bag."""


def typestore():
    """The ROS 2 Jazzy message types (rosbags' built-in store), for bags without definitions."""
    from rosbags.typesys import Stores, get_typestore
    return get_typestore(Stores.ROS2_JAZZY)


def _describe(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text if len(text) <= 300 else text[:300] + '...'


def normalize_topic(name: str) -> str:
    """Topic names as rosbag2 records them: absolute ('labeled_samples' -> '/labeled_samples')."""
    return name if name.startswith('/') else '/' + name


class Recording:
    """One or more rosbag2 bags read as one stream in receive-time order.

    ``paths`` are bag directories (or a bag's single .mcap / .db3 file). Use as a context
    manager; ``topics()``, ``start_ns``, ``end_ns``, ``message_count`` describe it,
    ``messages(topics)`` streams it. Raises ``BagError`` for anything wrong with a bag.
    """

    def __init__(self, paths: Sequence[PathLike]) -> None:
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise BagError('no bag given')
        for p in self.paths:
            if not p.exists():
                raise BagError(f'bag {p}: no such file or directory')
        self._reader = None

    @property
    def name(self) -> str:
        return ', '.join(str(p) for p in self.paths)

    def __enter__(self) -> 'Recording':
        from rosbags.highlevel import AnyReader
        try:
            self._reader = AnyReader(self.paths, default_typestore=typestore())
            self._reader.open()
        except Exception as err:  # noqa: BLE001 - see _fail: rosbags raises many types
            self._reader = None
            raise self._fail(err, 'cannot be opened') from None
        return self

    def __exit__(self, *_exc) -> None:
        if self._reader is not None:
            try:
                self._reader.close()
            except Exception:  # noqa: BLE001 - closing a corrupt bag may fail again: ignored
                pass
            self._reader = None

    def _fail(self, err: BaseException, what: str) -> BagError:
        # rosbags reports a damaged bag with whatever its decoders raise: AnyReaderError,
        # ReaderError, FileNotFoundError (no metadata.yaml), apsw.CorruptError (sqlite3),
        # OverflowError, struct.error or UnicodeDecodeError (mcap). Only calls into rosbags are
        # wrapped, so an error of this package is not passed off as a bad bag.
        hint = ''
        if 'end magic' in str(err):
            hint = (' (truncated: a recorder killed before it closed the bag leaves it so; '
                    '`ros2 bag reindex` can repair a bag directory)')
        return BagError(f'bag {self.name} {what}: {_describe(err)}{hint}')

    # --------------------------------------------------------------------------- description
    def _open(self):
        if self._reader is None:
            raise RuntimeError('Recording is not open: use it as a context manager')
        return self._reader

    def topics(self) -> Dict[str, Tuple[str, int]]:
        """{topic: (type 'pkg/msg/Type', message count)}, sorted by topic."""
        reader = self._open()
        return {name: (info.msgtype or '(several types)', int(info.msgcount))
                for name, info in sorted(reader.topics.items())}

    @property
    def start_ns(self) -> int:
        return int(self._open().start_time) if self.message_count else 0

    @property
    def end_ns(self) -> int:
        return int(self._open().end_time) if self.message_count else 0

    @property
    def message_count(self) -> int:
        return int(self._open().message_count)

    def storages(self) -> List[str]:
        """The storage of each bag: 'mcap', 'sqlite3' (from its files)."""
        out = []
        for p in self.paths:
            files = [p] if p.is_file() else list(p.iterdir())
            kinds = {'mcap' if f.suffix == '.mcap' else 'sqlite3' for f in files
                     if f.suffix in ('.mcap', '.db3')}
            out.append('+'.join(sorted(kinds)) or '?')
        return out

    def count(self, topics: Iterable[str]) -> int:
        """Messages the bag holds on ``topics``."""
        table = self.topics()
        return sum(table[t][1] for t in topics if t in table)

    # ------------------------------------------------------------------------------ streaming
    def _connections(self, topics: Optional[Iterable[str]]):
        reader = self._open()
        wanted = None if topics is None else set(topics)
        return reader, [c for c in reader.connections if wanted is None or c.topic in wanted]

    def raw_messages(self, topics: Optional[Iterable[str]] = None
                     ) -> Iterator[Tuple[str, str, int, Any]]:
        """``(topic, type, t_ns, rawdata)`` in receive-time order, on ``topics`` (all if None)."""
        reader, connections = self._connections(topics)
        if not connections:
            return
        try:
            for con, t, raw in reader.messages(connections=connections):
                yield con.topic, con.msgtype, t, raw
        except Exception as err:  # noqa: BLE001 - see _fail; only rosbags runs in this frame
            raise self._fail(err, 'is corrupt') from None

    def messages(self, topics: Optional[Iterable[str]] = None
                 ) -> Iterator[Tuple[str, int, Any]]:
        """``(topic, t_ns, message)`` in receive-time order: deserialized, one at a time.

        One generator frame around rosbags' reader (the per-message path is lean): an error in
        this frame comes from rosbags' reading or deserializing, never from the consumer.
        """
        reader, connections = self._connections(topics)
        if not connections:
            return
        deserialize = reader.typestore.deserialize_cdr
        con = None
        t = 0
        try:
            for con, t, raw in reader.messages(connections=connections):
                yield con.topic, t, deserialize(raw, con.msgtype)
        except Exception as err:  # noqa: BLE001 - see _fail; only rosbags runs in this frame
            where = (f' (after a message on {con.topic}, {con.msgtype}, at t = {t / 1e9:.9f} s)'
                     if con is not None else '')
            raise self._fail(err, 'is corrupt' + where) from None


class BagWriter:
    """Writes a rosbag2 bag with rosbags (storage 'mcap' or 'sqlite3'), typed from Jazzy's store.

    ``make(type, **fields)`` builds a message (fields not given take their zero value);
    ``write(topic, type, t_ns, msg)`` appends it with receive time ``t_ns``;
    ``write_raw`` appends bytes already serialized (``serialize(msg)``).
    """

    def __init__(self, path: PathLike, storage: str = 'mcap') -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer
        if storage not in STORAGES:
            raise ValueError(f'storage must be one of {STORAGES}, got {storage!r}')
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self.path = Path(path)
        self.store = typestore()
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._connections: Dict[str, Any] = {}
        self._types: Dict[str, str] = {}

    def __enter__(self) -> 'BagWriter':
        self._writer.open()
        return self

    def __exit__(self, *_exc) -> None:
        self._writer.close()

    def make(self, msgtype: str, **fields: Any) -> Any:
        return _make(self.store, msgtype, fields)

    def connection(self, topic: str, msgtype: str):
        con = self._connections.get(topic)
        if con is None:
            con = self._writer.add_connection(topic, msgtype, typestore=self.store)
            self._connections[topic] = con
            self._types[topic] = msgtype
        elif self._types[topic] != msgtype:
            raise ValueError(f'{topic} was written as {self._types[topic]}, not {msgtype}')
        return con

    def write(self, topic: str, msgtype: str, t_ns: int, msg: Any) -> None:
        self._writer.write(self.connection(topic, msgtype), int(t_ns),
                           self.store.serialize_cdr(msg, msgtype))

    def write_raw(self, topic: str, msgtype: str, t_ns: int, raw: bytes) -> None:
        self._writer.write(self.connection(topic, msgtype), int(t_ns), raw)


def _zero(store, type_spec) -> Any:
    """The zero value of a rosbags field type description."""
    import numpy as np
    kind, detail = type_spec
    if kind == 1:  # base type: (name, string bound)
        name = detail[0]
        if name == 'bool':
            return False
        if name in ('string', 'wstring'):
            return ''
        if name in ('float32', 'float64'):
            return 0.0
        return 0
    if kind == 2:  # a message type
        return _make(store, detail, {})
    inner, length = detail  # 3 array (fixed length), 4 sequence
    if inner[0] == 1 and inner[1][0] not in ('string', 'wstring', 'bool'):
        dtype = {'float32': np.float32, 'float64': np.float64, 'int8': np.int8,
                 'uint8': np.uint8, 'int16': np.int16, 'uint16': np.uint16, 'int32': np.int32,
                 'uint32': np.uint32, 'int64': np.int64, 'uint64': np.uint64,
                 'byte': np.uint8, 'char': np.uint8, 'octet': np.uint8}[inner[1][0]]
        return np.zeros(length if kind == 3 else 0, dtype=dtype)
    return [_zero(store, inner) for _ in range(length if kind == 3 else 0)]


def _make(store, msgtype: str, fields: Dict[str, Any]) -> Any:
    cls = store.types[msgtype]
    _consts, spec = store.fielddefs[msgtype][:2]
    values = {}
    for name, type_spec in spec:
        values[name] = fields.pop(name) if name in fields else _zero(store, type_spec)
    if fields:
        raise TypeError(f'{msgtype} has no field(s) {", ".join(sorted(fields))}')
    return cls(**values)
