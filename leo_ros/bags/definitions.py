"""
Message definitions as rosbag2 stores them in a bag (pure Python, no rclpy).

rosbag2 puts each topic's complete message definition into the bag in its ``ros2msg``
encoding: the type's own ``.msg`` text first, then every type it uses (recursively), each after
a line of 80 ``=`` and a line ``MSG: pkg/msg/Type`` (rosbag2's ``docs/message_definition_
encoding.md``). Tools that know no types ahead of time (Foxglove, ``mcap`` readers) decode
messages from it. The ``.msg`` files come from the ``share/<package>/msg`` folders of the
ament prefixes, where the interface packages install them; the type hash (``RIHS01_...``,
Iron on) from the ``.json`` type description beside them.
"""

from dataclasses import dataclass
import json
import os
from pathlib import Path
import sys

#: the line before each dependency's definition
DELIMITER = '=' * 80
#: .msg field types that are not messages
PRIMITIVES = frozenset((
    'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32',
    'uint32', 'int64', 'uint64', 'string', 'wstring', 'time', 'duration'))


class DefinitionError(LookupError):
    """A message type whose definition cannot be found or parsed."""


@dataclass(frozen=True)
class MessageDefinition:
    """A type's definition as it goes into a bag's schema record."""

    name: str               # 'sensor_msgs/msg/PointCloud2'
    encoding: str           # 'ros2msg', or '' when no definition was found
    text: str               # the complete definition ('' when none)
    type_hash: str = ''     # 'RIHS01_<hex>' when the install has type descriptions


def normalize_type(name: str) -> str:
    """
    Return the full type name ``pkg/msg/Type`` for ``pkg/Type`` or ``pkg/msg/Type``.

    :raise DefinitionError: for anything else
    """
    parts = str(name).strip().split('/')
    if len(parts) == 2 and all(parts):
        return f'{parts[0]}/msg/{parts[1]}'
    if len(parts) == 3 and all(parts):
        return '/'.join(parts)
    raise DefinitionError(f'not a message type name: {name!r} (expected pkg/msg/Type)')


def prefixes(environ=None):
    """Return the install prefixes to search: $AMENT_PREFIX_PATH, then this interpreter's."""
    environ = os.environ if environ is None else environ
    found = [Path(p) for p in environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    found.append(Path(sys.prefix))
    unique = []
    for prefix in found:
        if prefix not in unique:
            unique.append(prefix)
    return unique


def interface_file(type_name: str, suffix: str, search=None):
    """Return the path of ``share/<pkg>/<kind>/<Type><suffix>``, or None if no prefix has it."""
    package, kind, base = normalize_type(type_name).split('/')
    for prefix in (search if search is not None else prefixes()):
        path = Path(prefix) / 'share' / package / kind / f'{base}{suffix}'
        if path.is_file():
            return path
    return None


def field_types(text: str, package: str):
    """
    Return the message types the fields of a ``.msg`` text use, in order, without repeats.

    Constants (``int8 A=1``) and primitive fields are skipped; ``Type`` without a package is
    ``package/msg/Type``.

    :param text: a ``.msg`` file's text
    :param package: the package the text belongs to
    """
    used = []
    for line in text.splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if len(words) < 2 or '=' in words[1]:
            continue                          # not a field, or a constant
        base = words[0].split('[', 1)[0].split('<=', 1)[0]
        if base in PRIMITIVES:
            continue
        full = normalize_type(base if '/' in base else f'{package}/{base}')
        if full not in used:
            used.append(full)
    return used


def message_definition(type_name: str, search=None) -> MessageDefinition:
    """
    Return the complete ``ros2msg`` definition of a message type, as rosbag2 writes it.

    :param type_name: 'pkg/msg/Type' (or 'pkg/Type')
    :param search: install prefixes (default: :func:`prefixes`)
    :raise DefinitionError: when the type or one of its field types has no ``.msg`` file
    """
    name = normalize_type(type_name)
    search = prefixes() if search is None else list(search)
    texts = {}
    order = []
    pending = [name]
    while pending:
        current = pending.pop(0)
        if current in texts:
            continue
        path = interface_file(current, '.msg', search)
        if path is None:
            raise DefinitionError(f'no .msg file for {current} under '
                                  f'{", ".join(str(p) for p in search)}')
        texts[current] = path.read_text()
        order.append(current)
        pending.extend(t for t in field_types(texts[current], current.split('/')[0])
                       if t not in texts)
    parts = [texts[name]]
    for dependency in order[1:]:
        parts.append(f'\n{DELIMITER}\nMSG: {dependency}\n{texts[dependency]}')
    return MessageDefinition(name=name, encoding='ros2msg', text=''.join(parts),
                             type_hash=type_hash(name, search))


def type_hash(type_name: str, search=None) -> str:
    """Return the type's ``RIHS01_...`` hash from its ``.json`` description ('' if none)."""
    path = interface_file(type_name, '.json', search)
    if path is None:
        return ''
    try:
        hashes = json.loads(path.read_text()).get('type_hashes', [])
    except (OSError, ValueError):
        return ''
    full = normalize_type(type_name)
    return next((h.get('hash_string', '') for h in hashes if h.get('type_name') == full), '')


def definition_or_empty(type_name: str, search=None) -> MessageDefinition:
    """Return :func:`message_definition`, or an empty one (encoding '') when there is none."""
    try:
        return message_definition(type_name, search)
    except DefinitionError:
        return MessageDefinition(name=normalize_type(type_name), encoding='', text='')
