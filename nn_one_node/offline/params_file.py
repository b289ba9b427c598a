"""Reading ROS params files as ROS does: a node's ``ros__parameters`` matched by its name
('/**', '/**/trainer', 'trainer', '/trainer'), merged in file order. No rclpy."""

from __future__ import annotations

from typing import Any, Dict


class ConfigError(ValueError):
    """A params file, or a part of it, that cannot be used; the text names the entry."""


# ---------------------------------------------------------------------------------- params file
def _matches(key: Any, node: str) -> bool:
    if not isinstance(key, str):
        return False
    key = key.strip()
    return key in ('/**', '**', node, '/' + node, '/**/' + node, '**/' + node)


def params_for(document: Any, node: str) -> Dict[str, Any]:
    """The ``ros__parameters`` that a node named ``node`` (in any namespace) takes from a params
    file, merged in file order ('/**' entries first apply to every node, as in ROS).

    >>> params_for({'/**': {'ros__parameters': {'a': 1}},
    ...             '/**/trainer': {'ros__parameters': {'b': 2.0}},
    ...             'predictor': {'ros__parameters': {'c': 3}}}, 'trainer')
    {'a': 1, 'b': 2.0}
    """
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError('the params file is not a mapping of node names to ros__parameters')
    merged: Dict[str, Any] = {}
    for key, value in document.items():
        if _matches(key, node):
            params = value.get('ros__parameters') if isinstance(value, dict) else None
            if not isinstance(params, dict):
                raise ConfigError(f'params file entry {key!r} has no ros__parameters mapping')
            merged.update(params)
    return merged


def has_node(document: Any, node: str) -> bool:
    """True if the file names ``node`` itself (not only through '/**')."""
    return isinstance(document, dict) and any(
        _matches(k, node) and k.strip() not in ('/**', '**') for k in document)


def load_params_file(path: str) -> Any:
    """The parsed YAML of a params file; ConfigError naming the file if it cannot be read."""
    import yaml
    try:
        with open(path, 'rb') as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f'params file {path}: no such file') from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f'params file {path} cannot be read: {err}') from None
    except yaml.YAMLError as err:
        mark = getattr(err, 'problem_mark', None)
        where = f' at line {mark.line + 1}' if mark is not None else ''
        raise ConfigError(f'params file {path} is not valid YAML{where}') from None

