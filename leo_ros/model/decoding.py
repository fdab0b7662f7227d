"""
From generated ids to a decision: the action grammar and the action decoding (no ROS).

``Grammar`` says which ids may come next, so that even an untrained policy only ever writes
decodable actions: outside an action, payload tokens are forbidden; after a marker exactly its
payload follows (object tokens of objects present, distinct within one action; or the coordinate
tokens each position allows); after ``<refuse>`` only text. ``decode_answer`` splits the ids
into text and actions and decodes the actions into the fixed frame.
"""

from leo_ros.actions.grounded import GroundedTokenizer, GroundingContext, object_token
from leo_ros.actions.registry import kind_of
from leo_ros.model.decision import Decision
from leo_ros.model.features import action_from_robot_frame
from leo_ros.model.prompt import REFUSE
import torch


class Grammar:
    """
    Which ids may follow the ids generated so far.

    :param space: the policy's ``TokenSpace``
    :param action_tokenizer: a ``GroundedTokenizer`` or an ``ActionCodec``
    :param eos_id: the id that ends the answer
    """

    def __init__(self, space, action_tokenizer, eos_id: int):
        self.space, self.eos_id = space, eos_id
        total = len(space)
        self.positions = {}     # marker id -> per payload position: 'object' or a (total,) mask
        if isinstance(action_tokenizer, GroundedTokenizer):
            for kind in action_tokenizer.kinds:
                self.positions[space.id_of(kind_of(kind).marker)] = \
                    ['object'] * action_tokenizer.tokens_per_action(kind)
        else:
            for marker, allowed in action_tokenizer.grammar().items():
                masks = []
                for options in allowed:
                    mask = torch.zeros(total, dtype=torch.bool)
                    mask[[space.id_of(t) for t in options]] = True
                    masks.append(mask)
                self.positions[space.id_of(marker)] = masks
        self.refuse_id = space.id_of(REFUSE)
        self.free = torch.zeros(total, dtype=torch.bool)
        self.free[:space.vocab_size] = True
        self.free[list(self.positions)] = True
        self.free[self.refuse_id] = True
        self.text = torch.zeros(total, dtype=torch.bool)
        self.text[:space.vocab_size] = True
        self.end = torch.zeros(total, dtype=torch.bool)
        self.end[eos_id] = True

    def markers_of(self, kinds) -> list:
        """Return the marker ids of action kinds."""
        return [self.space.id_of(kind_of(kind).marker) for kind in kinds]

    def allowed(self, generated, object_count: int, require=None) -> torch.Tensor:
        """
        Return the (N,) bool mask of ids allowed next.

        :param generated: ids so far
        :param object_count: object slots that hold an object
        :param require: marker ids one of which must open the answer, which is then that one
            action only (None: free)
        """
        opener, payload = self._open_action(generated)
        if opener is not None and payload < len(self.positions[opener]):
            spec = self.positions[opener][payload]
            if spec != 'object':
                return spec
            mask = torch.zeros(len(self.space), dtype=torch.bool)
            start = self.space.object_start
            mask[start:start + min(object_count, self.space.max_objects)] = True
            mask[generated[len(generated) - payload:]] = False   # distinct objects
            return mask
        if require is not None:
            if any(token in self.positions for token in generated):
                return self.end
            mask = torch.zeros(len(self.space), dtype=torch.bool)
            mask[list(require)] = True
            return mask
        if self.refuse_id in generated:
            return self.text
        return self.free

    def _is_payload(self, token) -> bool:
        return token >= self.space.vocab_size and token != self.refuse_id

    def _open_action(self, generated) -> tuple:
        """Return (the marker the ids end in an action of, or None; payload ids after it)."""
        payload = 0
        for token in reversed(generated):
            if token in self.positions:
                return token, payload
            if not self._is_payload(token):
                break
            payload += 1
        return None, payload

    def is_action_complete(self, generated) -> bool:
        """Whether the last generated id closes an action's payload."""
        marker, payload = self._open_action(generated)
        return marker is not None and payload == len(self.positions[marker])


def split_answer(ids, grammar) -> tuple:
    """
    Split generated ids into text ids and action segments.

    :return: (text ids, [[marker id, payload ids...], ...], refused)
    """
    text, segments, current = [], [], None
    for token in ids:
        if token in grammar.positions:
            current = [token]
            segments.append(current)
        elif current is not None and grammar._is_payload(token):
            current.append(token)
        else:
            current = None
            if token != grammar.refuse_id:
                text.append(token)
    return text, segments, grammar.refuse_id in ids


def decode_answer(ids, policy, scene_tokens, keep, agent_pose, is_free=None) -> Decision:
    """
    Turn generated ids into a ``Decision`` with actions in the fixed frame.

    :param policy: the ``LeoPolicy`` (its token space, grammar, tokenizer, action tokenizer)
    :param scene_tokens: ``SceneTokens`` (fixed frame) the object slots point into
    :param keep: (K,) scene rows of the object slots
    """
    space, grammar = policy.space, policy.grammar
    text_ids, segments, refused = split_answer(ids, grammar)
    strings = [space.token_of(i, policy.tokenizer) for i in ids]
    text = policy.tokenizer.decode(text_ids).strip()
    if refused:
        return Decision(text=text, action=None, tokens=strings, kind='refusal',
                        token_ids=list(ids))
    actions, error, object_ids = [], '', []
    try:
        if isinstance(policy.action_tokenizer, GroundedTokenizer):
            rows = [[int(keep[t - space.object_start]) for t in segment[1:]]
                    for segment in segments]
            kinds = [space.token_of(segment[0], policy.tokenizer)[1:-1] for segment in segments]
            actions = decode_grounded(policy.action_tokenizer, kinds, rows, scene_tokens,
                                      agent_pose, is_free)
            object_ids = [int(scene_tokens.ids[r]) for row in rows for r in row]
        else:
            for segment in segments:
                words = [space.token_of(t, policy.tokenizer) for t in segment]
                actions.append(action_from_robot_frame(policy.action_tokenizer.decode(words),
                                                       agent_pose))
    except ValueError as exc:
        actions, error = [], str(exc)
    if not text and actions:
        text = '; '.join(kind_of(a).describe(a) for a in actions)
    return Decision(text=text, action=actions[0] if actions else None, tokens=strings,
                    kind=actions[0].kind if actions else 'text', token_ids=list(ids),
                    error=error, tokenizer=policy.config.action_mode if actions else '',
                    actions=actions, object_ids=object_ids)


def decode_grounded(tokenizer, kinds, rows, scene_tokens, agent_pose, is_free=None) -> list:
    """
    Decode grounded actions (object rows of the scene) into typed actions, in order.

    A navigation goal followed by a pick-and-place is chosen within arm reach of both objects;
    a pick-and-place out of reach, not after a goal, starts with such an approach. What follows
    a navigation goal is decided from where the robot will be.
    """
    actions = []
    pose = tuple(float(v) for v in agent_pose)
    for number, (kind, objects) in enumerate(zip(kinds, rows)):
        context = GroundingContext.from_scene(scene_tokens, pose, is_free)
        reach = None
        if kind == 'nav_goal' and number + 1 < len(kinds) and kinds[number + 1] == 'pick_place':
            reach = rows[number + 1]
        after_goal = number > 0 and kinds[number - 1] == 'nav_goal'
        if kind == 'pick_place' and not after_goal and objects[0] != objects[1] \
                and not tokenizer.within_reach(objects[0], objects[1], context):
            approach = tokenizer.approach_pose(objects[0], context, objects)
            actions.append(approach)
            pose = (approach.x, approach.y, approach.yaw)
            context = GroundingContext.from_scene(scene_tokens, pose, is_free)
        action = tokenizer.decode(kind, [object_token(k) for k in objects], context, reach)
        actions.append(action)
        if kind == 'nav_goal':
            pose = (action.x, action.y, action.yaw)
    return actions
