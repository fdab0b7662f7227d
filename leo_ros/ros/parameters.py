"""
ROS parameters declared from one table: description, range or choices, read-only status.

A node lists its parameters as :class:`Spec` entries. :func:`declare` turns each into a
``ParameterDescriptor`` (``FloatingPointRange``/``IntegerRange`` for numbers, the choices in
``additional_constraints`` for strings, ``read_only``) and declares it, so rclpy itself
rejects a value of the wrong type, out of range, or for a read-only parameter, with a reason.
:func:`live_update` is the set-callback half: it checks the choices, builds the new config
objects from the current values plus the change, and only then hands them over to be applied
in one assignment, so a rejected change leaves everything as it was.
:func:`warn_undeclared` names parameter-file entries that no parameter of the node matches.
"""

from dataclasses import dataclass
import difflib
import math


@dataclass(frozen=True)
class Spec:
    """
    One parameter: default (its type is the parameter's type), description and limits.

    :param low: smallest allowed number (both limits are required for numbers)
    :param high: largest allowed number
    :param choices: allowed strings (empty: any)
    :param read_only: changes after start-up are rejected
    """

    default: object
    description: str
    low: float = None
    high: float = None
    choices: tuple = ()
    read_only: bool = False

    def __post_init__(self):
        numeric = isinstance(self.default, (int, float)) and not isinstance(self.default, bool)
        if numeric and (self.low is None or self.high is None):
            raise ValueError(f'Spec {self.description!r}: a number needs both limits')
        if numeric and not self.low <= self.default <= self.high:
            raise ValueError(f'Spec {self.description!r}: default {self.default} is outside '
                             f'[{self.low}, {self.high}]')
        if self.choices and self.default not in self.choices:
            raise ValueError(f'Spec {self.description!r}: default {self.default!r} is not one '
                             f'of {self.choices}')

    def check(self, name, value):
        """Return why ``value`` is not allowed for parameter ``name``, or '' when it is."""
        if self.choices and value not in self.choices:
            return f'{name} must be one of {", ".join(map(repr, self.choices))}, got {value!r}'
        if isinstance(value, float) and not math.isfinite(value):
            return f'{name} must be finite, got {value}'
        return ''


def descriptor(name, spec: Spec):
    """Return the ParameterDescriptor of ``spec``."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    text = spec.description
    constraints = ''
    if spec.choices:
        constraints = 'one of: ' + ', '.join(spec.choices)
    result = ParameterDescriptor(name=name, description=text, read_only=spec.read_only,
                                 additional_constraints=constraints)
    if isinstance(spec.default, bool):
        return result
    if isinstance(spec.default, int):
        result.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high),
                                             step=1)]
        result.additional_constraints = f'{int(spec.low)} to {int(spec.high)}'
    elif isinstance(spec.default, float):
        result.floating_point_range = [FloatingPointRange(
            from_value=float(spec.low), to_value=float(spec.high), step=0.0)]
        result.additional_constraints = f'{spec.low:g} to {spec.high:g}'
    return result


def declare(node, table) -> dict:
    """
    Declare every parameter of ``table`` (name -> Spec) and return name -> value.

    :raises ValueError: a value from the command line or a parameter file that is out of
        range, of the wrong type, or not one of the choices (the node cannot start with it)
    """
    from rclpy.exceptions import ParameterException
    values = {}
    for name, spec in table.items():
        try:
            value = node.declare_parameter(name, spec.default, descriptor(name, spec)).value
        except ParameterException as error:
            raise ValueError(f'parameter {name}: {error}') from error
        problem = spec.check(name, value)
        if problem:
            raise ValueError(problem)
        values[name] = value
    return values


def live_update(tables, parameters, build):
    """
    Check a parameter change and build what it changes, without applying anything.

    :param tables: name -> Spec for every parameter of the node
    :param parameters: the rclpy Parameters of one set request
    :param build: callable ``(changes: dict) -> object`` that builds the new configuration
        from the current one and ``changes`` and raises ValueError naming a bad value
    :return: ``(result, built)``: a SetParametersResult and the built object (None when the
        change was rejected; then nothing may be applied)
    """
    from rcl_interfaces.msg import SetParametersResult
    changes = {}
    for parameter in parameters:
        spec = tables.get(parameter.name)
        if spec is None:
            continue             # not one of ours (use_sim_time, ...): rclpy handles it
        problem = spec.check(parameter.name, parameter.value)
        if problem:
            return SetParametersResult(successful=False, reason=problem), None
        changes[parameter.name] = parameter.value
    try:
        built = build(changes)
    except (TypeError, ValueError) as error:
        return SetParametersResult(successful=False, reason=str(error)), None
    return SetParametersResult(successful=True), built


def undeclared_overrides(node):
    """Return parameter names given to the node (file, command line) that it never declared."""
    overrides = getattr(node, '_parameter_overrides', None) or {}
    return sorted(name for name in overrides if not node.has_parameter(name)
                  and not name.startswith('qos_overrides.'))


def warn_undeclared(node, known=()):
    """
    Log a warning for every parameter the node was given but does not declare.

    rclpy silently ignores them; a typo like ``max_linear_sped`` would otherwise go unseen.

    :param known: the node's parameter names, for a 'did you mean' hint
    :return: the names warned about
    """
    names = undeclared_overrides(node)
    for name in names:
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f' (did you mean {close[0]!r}?)' if close else ''
        node.get_logger().warning(f'parameter {name!r} is set but {node.get_name()} has no '
                                  f'such parameter; it is ignored{hint}')
    return names
