"""
The agent's decision logic, shared by policy_node and tests (pure Python + the policy).

It keeps the newest scene, image and pose, turns one instruction into one policy decision,
passes any action through the intent check, the grounding gate and the safety gate, and runs
multi-step tasks; the node only adapts messages and publishes what comes out.

Motion is allowed only when (1) the instruction's own words ask for motion
(:mod:`leo_ros.agent.intent`, combined with the model's intent when it has one), (2) every
object the instruction names, and every object the action points at, is in the current scene
(:mod:`leo_ros.agent.grounding`), and (3) the safety gate passes it. A refusal comes back
with ``success=False``, ``kind='refusal'`` and the reason as its ``response``.

:meth:`AgentCore.stop` and every motion command share one lock (:meth:`AgentCore.motion`),
so once a stop has returned, no motion command of the cancelled task goes out.
"""

from contextlib import contextmanager
from dataclasses import dataclass, field
import inspect
import threading
import time

from leo_ros.actions.registry import kind_of
from leo_ros.actions.types import NavStep
from leo_ros.agent.grounding import GroundingConfig, GroundingGate
from leo_ros.agent.instructions import clean_instruction, InstructionError
from leo_ros.agent.intent import instruction_intent, motion_allowed
from leo_ros.agent.safety import GateResult, SafetyConfig, SafetyGate

#: Outcome.kind of an instruction the agent will not act on (absent object, no target).
REFUSAL = 'refusal'
#: Why a running task ended early, as the result's error says.
STOPPED = 'stopped by /leo/stop'
CLIENT_CANCELLED = 'cancelled by the client'


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
    text_cache_size: int = 2048       # instruction encodings the policy keeps (LRU)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    grounding: GroundingConfig = field(default_factory=GroundingConfig)

    def __post_init__(self):
        if self.max_steps < 1:
            raise ValueError(f'AgentConfig.max_steps must be >= 1, got {self.max_steps}')
        if self.text_cache_size < 1:
            raise ValueError(f'AgentConfig.text_cache_size must be >= 1, got '
                             f'{self.text_cache_size}')
        for name in ('goal_tolerance', 'goal_timeout'):
            if not getattr(self, name) > 0:
                raise ValueError(f'AgentConfig.{name} must be > 0, got {getattr(self, name)}')


class AgentBusy(RuntimeError):
    """Another instruction is running."""


class AgentNotReady(RuntimeError):
    """The model is not loaded, or no scene has arrived."""


class Cancelled(RuntimeError):
    """A motion command was not sent: a stop or cancel came first (the message says which)."""


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
    intent: str = ''                  # what the instruction's words ask for (agent.intent)
    note: str = ''                    # e.g. why a decided motion was not carried out


def describe_action(action) -> str:
    """Return a short human-readable summary of a typed action (the registry's text)."""
    try:
        return kind_of(action).describe(action)
    except ValueError:
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
        self.grounding = GroundingGate(config.grounding)
        self._load_policy = load_policy
        self.policy = None
        self.load_error = 'model not loaded yet'
        self.device = self.dtype = ''
        self._accepts_is_free = False
        self._lock = threading.Lock()         # guards the inputs below
        self._busy = threading.Lock()         # one instruction at a time
        self._motion = threading.Lock()       # motion commands vs stop (see motion())
        self._cancel = threading.Event()
        self.cancel_reason = ''
        self._scene, self._scene_time = None, None
        self._image = None
        self._pose = None
        self.decisions_ms = []

    # --- lifecycle ---------------------------------------------------------------------------
    def load(self) -> bool:
        """Load the policy; on failure keep the reason in :attr:`load_error`."""
        try:
            policy = self._load_policy(self.config.model_path, self.config.device,
                                       self.config.dtype)
            if hasattr(policy, 'set_text_cache_size'):     # stand-ins keep no encodings
                policy.set_text_cache_size(self.config.text_cache_size)
            # where the weights really are (a policy without in_use() says what it was given)
            used = policy.in_use() if hasattr(policy, 'in_use') else {
                'device': str(getattr(policy, 'device', self.config.device)),
                'dtype': str(getattr(policy, 'dtype', self.config.dtype))}
            self.device, self.dtype = used['device'], used['dtype']
            try:
                self._accepts_is_free = 'is_free' in inspect.signature(policy.act).parameters
            except (TypeError, ValueError):
                self._accepts_is_free = False
            self.policy = policy
            self.load_error = ''
            return True
        except Exception as error:   # a missing or corrupt checkpoint must not kill the node
            self.policy = None
            self.load_error = f'cannot load model from {self.config.model_path or "default"}' \
                f': {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}'
            return False

    # --- inputs (called from subscription callbacks: store only) ------------------------------
    def set_scene(self, scene_tokens, received_at):
        with self._lock:
            self._scene, self._scene_time = scene_tokens, received_at

    def clear_scene(self):
        """Forget the scene (the world was reset): nothing moves until a new one arrives."""
        with self._lock:
            self._scene, self._scene_time = None, None

    def set_image(self, image):
        with self._lock:
            self._image = image

    def set_pose(self, x, y, yaw):
        with self._lock:
            self._pose = (x, y, yaw)

    def set_map(self, map_grid):
        """Use the robot's map (a MapGrid, or None) for the gate and for grounded goals."""
        self.gate.set_map(map_grid)

    @property
    def pose(self):
        with self._lock:
            return self._pose

    @property
    def scene(self):
        with self._lock:
            return self._scene

    def scene_age(self, now):
        """Seconds since the newest scene arrived, or None if none has."""
        with self._lock:
            return None if self._scene_time is None else now - self._scene_time

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    # --- stop and cancel ---------------------------------------------------------------------
    def cancel(self, reason=CLIENT_CANCELLED):
        """Ask the running task to stop at its next check; ``reason`` ends up in its result."""
        with self._motion:
            if not self._cancel.is_set():
                self.cancel_reason = reason
            self._cancel.set()

    def stop(self, halt=None, reason=STOPPED):
        """
        Cancel the running task with ``reason`` and run ``halt()`` under the motion lock.

        Every motion command is sent under the same lock after checking :attr:`cancelled`,
        so no command of the cancelled task can follow the halt commands.

        :return: whether a task was running (and is now cancelled)
        """
        with self._motion:
            self.cancel_reason = reason
            self._cancel.set()
            if halt is not None:
                halt()
            return self._busy.locked()

    @contextmanager
    def motion(self):
        """Hold the motion lock; yields whether motion may be commanded (not cancelled)."""
        with self._motion:
            yield not self._cancel.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def begin(self):
        """Claim the agent for one instruction or task; raise AgentBusy if it is taken."""
        if not self._busy.acquire(blocking=False):
            raise AgentBusy('busy: another instruction is running; try again when it is done '
                            'or call /leo/stop')
        with self._motion:
            self._cancel.clear()
            self.cancel_reason = ''

    def end(self):
        self._busy.release()

    def finish(self):
        """
        Release the agent after a task; return (cancelled, reason) at that moment.

        Atomic with :meth:`stop`: a stop either lands before (the task reports it cancelled)
        or after (the stop reports that no task was running).
        """
        with self._motion:
            cancelled, reason = self._cancel.is_set(), self.cancel_reason
            self._busy.release()
        return cancelled, reason

    # --- decisions ---------------------------------------------------------------------------
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
        if scene is None:
            return Outcome(False, error='no scene has arrived yet on /leo/scene_objects')
        start = time.perf_counter()
        extra = {'is_free': self.gate.map.is_free} if self._accepts_is_free and \
            self.gate.map is not None else {}
        try:
            decision = self.policy.act(scene, image, text, pose if pose else (0.0, 0.0, 0.0),
                                       **extra)
        except Exception as error:   # the node keeps serving whatever the model does
            return Outcome(False, error=f'policy failed: {type(error).__name__}: {error}')
        elapsed = (time.perf_counter() - start) * 1e3
        self.decisions_ms = (self.decisions_ms + [elapsed])[-100:]
        return self._judge(decision, text, scene, pose, now, dry_run, elapsed)

    def _judge(self, decision, text, scene, pose, now, dry_run, elapsed) -> Outcome:
        """Turn a policy Decision into an Outcome: refusals, intent, grounding, safety gate."""
        kind = getattr(decision, 'kind', 'text') or 'text'
        answer = getattr(decision, 'text', '') or ''
        intent = instruction_intent(text)
        outcome = Outcome(True, kind=kind, tokens=list(getattr(decision, 'tokens', []) or []),
                          token_ids=list(getattr(decision, 'token_ids', []) or []),
                          tokenizer=getattr(decision, 'tokenizer', '') or '',
                          decision_ms=elapsed, intent=intent)
        if kind == REFUSAL:
            return self._refuse(outcome, answer or 'I will not do that.')
        action = getattr(decision, 'action', None)
        if action is None and getattr(decision, 'error', ''):
            refusal = self.grounding.check_instruction(text, scene, kind) \
                if intent == 'motion' else ''
            if refusal:                        # it named something absent: say that first
                return self._refuse(outcome, refusal)
            outcome.success = False
            outcome.error = f'could not decode the action: {decision.error}'
            outcome.response = answer
            return outcome
        if action is None:
            outcome.kind, outcome.response = 'text', answer
            if not answer:
                return Outcome(False, error='the policy produced neither text nor a valid '
                               'action', decision_ms=elapsed, intent=intent)
            refusal = self.grounding.check_answer(text, scene)
            return self._refuse(outcome, refusal) if refusal else outcome
        if not motion_allowed(intent, getattr(decision, 'intent', '') or ''):
            refusal = self.grounding.check_answer(text, scene)
            if refusal:                 # a question about something absent: say so
                return self._refuse(outcome, refusal)
            return self._no_motion(outcome, action, answer, intent,
                                   getattr(decision, 'intent', '') or '')
        actions = list(getattr(decision, 'actions', None) or [action])
        refusal = self.grounding.check_decision(text, decision, scene, self.scene)
        outcome.kind = action.kind
        if refusal:
            return self._refuse(outcome, refusal)
        if dry_run:
            outcome.response = f'dry run: would {describe_action(action)}'
            return outcome
        robot_xy = pose[:2] if pose else None
        gate = self.gate.check(action, self.scene_age(now), robot_xy)
        outcome.gate = gate
        if not gate.allowed:
            outcome.success = False
            outcome.error = f'refused by the safety gate: {gate.reason}'
            outcome.response = f'decided to {describe_action(action)}'
            return outcome
        outcome.action = gate.action
        outcome.plan = actions[1:]
        note = f' ({gate.reason})' if gate.reason else ''
        outcome.response = '; then '.join([describe_action(gate.action) + note] +
                                          [describe_action(a) for a in outcome.plan])
        return outcome

    @staticmethod
    def _refuse(outcome, text) -> Outcome:
        outcome.success, outcome.kind = False, REFUSAL
        outcome.response, outcome.error = text, f'refused: {text}'
        outcome.action, outcome.plan = None, []
        return outcome

    @staticmethod
    def _no_motion(outcome, action, answer, intent, model_intent) -> Outcome:
        """Answer a question that decoded to an action with text only: nothing moves."""
        why = f'the instruction is a {intent}' if intent != 'motion' else \
            f'the model reads the instruction as a {model_intent}'
        if intent == 'other':
            why = 'the instruction does not ask for motion'
        outcome.kind, outcome.action, outcome.plan = 'text', None, []
        outcome.note = f'no motion: {why}; the decoded {action.kind} was dropped'
        if answer:
            outcome.response = answer
            return outcome
        outcome.success = False
        outcome.error = (f'no text answer: the policy decided to {describe_action(action)}, '
                         f'but {why}, so nothing moves')
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
            if not ok or self.cancelled:
                break
            gate = self.gate_now(action, now())
            if not gate.allowed:
                return False, f'refused by the safety gate: {gate.reason}'
            ok, message = perform(gate.action)
        if self.cancelled:
            return False, self.cancel_reason or CLIENT_CANCELLED
        return ok, message

    def cancelled_outcome(self, response='', kind='text') -> Outcome:
        """Return the Outcome of a task that a stop or a cancel ended."""
        return Outcome(False, response=response, kind=kind,
                       error=self.cancel_reason or CLIENT_CANCELLED)

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
                return self.cancelled_outcome(), steps
            feedback('thinking', step, '')
            outcome = decide(instruction, now())
            if self.cancelled:
                return self.cancelled_outcome(response=outcome.response,
                                              kind=outcome.kind), steps
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
