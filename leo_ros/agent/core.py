"""
The agent's decision logic, shared by policy_node and tests (pure Python + the policy).

It keeps the newest scene, image and pose, turns one instruction into one policy decision,
passes any action through the safety gate, and runs multi-step tasks; the node only adapts
messages and publishes what comes out.
"""

from dataclasses import dataclass, field
import math
import threading
import time

from leo_ros.actions.types import NavGoal, NavStep, PickPlace
from leo_ros.agent.instructions import clean_instruction, InstructionError
from leo_ros.agent.safety import GateResult, SafetyConfig, SafetyGate


@dataclass
class AgentConfig:
    """Parameters of the agent (policy_node maps its ROS parameters onto this)."""

    model_path: str = ''              # '' = the default model shipped with leo_ros
    device: str = 'auto'
    dtype: str = 'auto'
    fixed_frame: str = 'map'
    max_steps: int = 20               # decisions per /leo/execute task
    goal_tolerance: float = 0.35      # a navigation goal counts as reached within this [m]
    goal_timeout: float = 60.0        # give up waiting for a goal after this [s]
    safety: SafetyConfig = field(default_factory=SafetyConfig)

    def __post_init__(self):
        if self.max_steps < 1:
            raise ValueError(f'AgentConfig.max_steps must be >= 1, got {self.max_steps}')
        for name in ('goal_tolerance', 'goal_timeout'):
            if not getattr(self, name) > 0:
                raise ValueError(f'AgentConfig.{name} must be > 0, got {getattr(self, name)}')


class AgentBusy(RuntimeError):
    """Another instruction is running."""


class AgentNotReady(RuntimeError):
    """The model is not loaded, or no scene has arrived."""


@dataclass
class Outcome:
    """The result of one instruction (one policy decision)."""

    success: bool
    response: str = ''
    error: str = ''
    kind: str = 'text'
    action: object = None             # the gated action to execute, or None
    plan: list = field(default_factory=list)   # further actions after it, gated when run
    gate: GateResult = None
    tokens: list = field(default_factory=list)
    token_ids: list = field(default_factory=list)
    tokenizer: str = ''
    decision_ms: float = 0.0


def describe_action(action) -> str:
    """Return a short human-readable summary of a typed action."""
    if isinstance(action, NavGoal):
        return (f'navigate to ({action.x:.2f}, {action.y:.2f}) facing '
                f'{math.degrees(action.yaw):.0f} deg')
    if isinstance(action, NavStep):
        return f'step {action.step}'
    if isinstance(action, PickPlace):
        return (f'pick at ({action.pick_x:.2f}, {action.pick_y:.2f}, {action.pick_z:.2f}), '
                f'place at ({action.place_x:.2f}, {action.place_y:.2f}, '
                f'{action.place_z:.2f})')
    return f'{action.kind}: {action}'


class AgentCore:
    """
    Hold the agent's inputs and the policy; decide one instruction at a time.

    :param config: AgentConfig
    :param load_policy: callable ``(model_path, device, dtype) -> policy`` with
        ``policy.act(scene_tokens, image, instruction, agent_pose)``
    """

    def __init__(self, config: AgentConfig, load_policy):
        self.config = config
        self.gate = SafetyGate(config.safety)
        self._load_policy = load_policy
        self.policy = None
        self.load_error = 'model not loaded yet'
        self.device = ''
        self._lock = threading.Lock()         # guards the inputs below
        self._busy = threading.Lock()         # one instruction at a time
        self._cancel = threading.Event()
        self._scene, self._scene_time = None, None
        self._image = None
        self._pose = None
        self.decisions_ms = []

    # --- lifecycle ---------------------------------------------------------------------------
    def load(self) -> bool:
        """Load the policy; on failure keep the reason in :attr:`load_error`."""
        try:
            self.policy = self._load_policy(self.config.model_path, self.config.device,
                                            self.config.dtype)
            self.device = str(getattr(self.policy, 'device', self.config.device))
            self.load_error = ''
            return True
        except Exception as error:   # a missing or corrupt checkpoint must not kill the node
            self.policy = None
            self.load_error = f'cannot load model from {self.config.model_path or "default"}' \
                f': {type(error).__name__}: {error}'
            return False

    # --- inputs (called from subscription callbacks: store only) ------------------------------
    def set_scene(self, scene_tokens, received_at):
        with self._lock:
            self._scene, self._scene_time = scene_tokens, received_at

    def set_image(self, image):
        with self._lock:
            self._image = image

    def set_pose(self, x, y, yaw):
        with self._lock:
            self._pose = (x, y, yaw)

    @property
    def pose(self):
        with self._lock:
            return self._pose

    def scene_age(self, now):
        """Seconds since the newest scene arrived, or None if none has."""
        with self._lock:
            return None if self._scene_time is None else now - self._scene_time

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    # --- decisions ---------------------------------------------------------------------------
    def cancel(self):
        """Ask the running task to stop at its next check."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def begin(self):
        """Claim the agent for one instruction or task; raise AgentBusy if it is taken."""
        if not self._busy.acquire(blocking=False):
            raise AgentBusy('busy: another instruction is running; try again when it is done '
                            'or call /leo/stop')
        self._cancel.clear()

    def end(self):
        self._busy.release()

    def decide(self, instruction, now, dry_run=False) -> Outcome:
        """
        Turn one instruction into one gated decision (the caller holds :meth:`begin`).

        Never raises for bad input: the Outcome says what is wrong.
        """
        try:
            text = clean_instruction(instruction)
        except InstructionError as error:
            return Outcome(False, error=str(error))
        if self.policy is None:
            return Outcome(False, error=f'model not ready: {self.load_error}')
        with self._lock:
            scene, image, pose = self._scene, self._image, self._pose
        age = self.scene_age(now)
        if scene is None:
            return Outcome(False, error='no scene has arrived yet on /leo/scene_objects')
        start = time.perf_counter()
        try:
            decision = self.policy.act(scene, image, text, pose if pose else (0.0, 0.0, 0.0))
        except Exception as error:   # the node keeps serving whatever the model does
            return Outcome(False, error=f'policy failed: {type(error).__name__}: {error}')
        elapsed = (time.perf_counter() - start) * 1e3
        self.decisions_ms = (self.decisions_ms + [elapsed])[-100:]
        outcome = Outcome(True, kind=getattr(decision, 'kind', 'text') or 'text',
                          tokens=list(getattr(decision, 'tokens', []) or []),
                          token_ids=list(getattr(decision, 'token_ids', []) or []),
                          tokenizer=getattr(decision, 'tokenizer', '') or '',
                          decision_ms=elapsed)
        action = getattr(decision, 'action', None)
        if action is None and getattr(decision, 'error', ''):
            return Outcome(False, error=f'could not decode the action: {decision.error}',
                           response=getattr(decision, 'text', '') or '', kind=outcome.kind,
                           tokens=outcome.tokens, token_ids=outcome.token_ids,
                           decision_ms=elapsed)
        if action is None:
            outcome.kind = 'text'
            outcome.response = getattr(decision, 'text', '') or ''
            if not outcome.response:
                return Outcome(False, error='the policy produced neither text nor a valid '
                               'action', decision_ms=elapsed)
            return outcome
        outcome.kind = action.kind
        if dry_run:
            outcome.response = f'dry run: would {describe_action(action)}'
            return outcome
        robot_xy = pose[:2] if pose else None
        gate = self.gate.check(action, age, robot_xy)
        outcome.gate = gate
        if not gate.allowed:
            outcome.success = False
            outcome.error = f'refused by the safety gate: {gate.reason}'
            outcome.response = f'decided to {describe_action(action)}'
            return outcome
        outcome.action = gate.action
        outcome.plan = list(getattr(decision, 'actions', None) or [])[1:]
        note = f' ({gate.reason})' if gate.reason else ''
        outcome.response = '; then '.join([describe_action(gate.action) + note] +
                                          [describe_action(a) for a in outcome.plan])
        return outcome

    def gate_now(self, action, now) -> GateResult:
        """Gate a later action of a plan against the scene age and pose at its turn."""
        pose = self.pose
        return self.gate.check(action, self.scene_age(now), pose[:2] if pose else None)

    def run_plan(self, outcome, now, perform):
        """
        Carry out a decided action and the rest of its plan, in order.

        :param perform: callable ``(action) -> (ok, message)`` that executes and waits
        :return: (ok, message)
        """
        ok, message = perform(outcome.action)
        for action in outcome.plan:
            if not ok:
                break
            if self.cancelled:
                return False, 'cancelled'
            gate = self.gate_now(action, now())
            if not gate.allowed:
                return False, f'refused by the safety gate: {gate.reason}'
            ok, message = perform(gate.action)
        return ok, message

    def execute(self, instruction, now, perform, feedback, max_steps=0, decide=None):
        """
        Run a multi-step task: decide, act, repeat until done, cancelled or out of steps.

        :param now: callable returning the current time [s] (node clock)
        :param perform: callable ``(action) -> (ok, message)`` that executes and waits
        :param feedback: callable ``(phase, step, last_action)``
        :param decide: callable like :meth:`decide` (default: it), e.g. one that also publishes
        :return: (Outcome of the last decision, steps taken)
        """
        decide = decide or self.decide
        limit = max_steps or self.config.max_steps
        outcome, steps = Outcome(False, error='no step was taken'), 0
        for step in range(1, limit + 1):
            if self.cancelled:
                return Outcome(False, error='cancelled'), steps
            feedback('thinking', step, '')
            outcome = decide(instruction, now())
            if not outcome.success:
                return outcome, steps
            if outcome.action is None:          # a text answer ends the task
                feedback('done', step, outcome.response)
                return outcome, step
            feedback('acting', step, outcome.response)
            ok, message = self.run_plan(outcome, now, perform)
            steps = step
            if not ok:
                return Outcome(False, response=outcome.response, error=message,
                               kind=outcome.kind), steps
            if not isinstance(outcome.action, NavStep) or outcome.action.step == 'stop':
                feedback('done', step, outcome.response)
                return outcome, steps
        return Outcome(False, response=outcome.response, kind=outcome.kind,
                       error=f'not done after {limit} steps'), steps
