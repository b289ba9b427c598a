"""The assembler's two kinds of error: a configuration that cannot work (raised at start), and a
message whose value cannot be used (counted by kind, never raised to the node).

>>> fault = MessageFault('non-finite', '/scan/ranges[0] is nan')
>>> fault.kind, str(fault), isinstance(ConfigError('rate'), ValueError)
('non-finite', '/scan/ranges[0] is nan', True)
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration that cannot work; the text names the entry or parameter and says why."""


class MessageFault(ValueError):
    """A message whose value cannot be used: ``kind`` is the counter's name, the text why."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
