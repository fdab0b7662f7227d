"""What one call of a policy's ``act`` returns (no torch: stand-in policies use it too)."""

from dataclasses import dataclass, field


@dataclass
class Decision:
    """What one call of ``LeoPolicy.act`` decided."""

    #: the answer text, action tokens removed
    text: str
    #: the first typed action (leo_ros.actions.types) or None
    action: object
    #: generated token strings (end-of-sequence excluded)
    tokens: list
    #: 'text', 'refusal' or the first action's kind ('nav_goal', 'pick_place', ...)
    kind: str
    token_ids: list = field(default_factory=list)
    #: why an action could not be decoded ('' when fine)
    error: str = ''
    #: the action tokenizer that produced the action ('grounded', 'bins', 'rvq'; '' for text)
    tokenizer: str = ''
    #: every typed action, in order (a plan decodes into a NavGoal, then a PickPlace)
    actions: list = field(default_factory=list)
    #: when asked: object id -> [P(the answer rests on it), P(the text names it)]
    grounding: dict = field(default_factory=dict)
    #: what the instruction asks for per the intent head: 'motion', 'question', 'description'
    #: ('' without a head)
    intent: str = ''
    #: scene ids of the objects the action tokens point at, in order
    object_ids: list = field(default_factory=list)
