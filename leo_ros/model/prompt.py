"""
LEO's prompt layout and the policy's token space (pure Python).

::

    <bos>{system} Ego-view image: <img> Objects (including you) in the scene: <robot>
    <object tokens> USER: {instruction} <grounded tokens> ASSISTANT: {answer}<eos>

The text pieces are tokens of the LM's own tokenizer; the image, robot, object and grounded
tokens are spliced in as embeddings. Everything up to the object tokens reads no instruction:
it is the scene prefix, whose keys and values are cached across instructions. Only
``{answer}<eos>`` carries the loss.

The LM answers in its own vocabulary plus added tokens: action markers (``<nav_goal>``,
``<pick_place>``, ...), ``<refuse>`` (the instruction names something that is not there), the
coordinate tokens of the bins / residual-VQ ablations, and one object token per object slot
(``<obj_k>``, whose logit is a pointer into the object tokens). ``TokenSpace`` numbers them:
``[0, V)`` the vocabulary, ``[V, V + A)`` the added tokens, ``[V + A, V + A + K)`` the objects.
"""

import re

from leo_ros.actions.grounded import object_index, object_token

IMAGE_HEADER = ' Ego-view image:'
OBJECTS_HEADER = ' Objects (including you) in the scene:'
USER = ' USER:'
ASSISTANT = ' ASSISTANT:'
REFUSE = '<refuse>'
#: what an instruction asks for (the intent head's classes)
INTENTS = ('motion', 'question', 'description')
#: training family -> intent
FAMILY_INTENTS = {'nav': 'motion', 'pick_place': 'motion', 'plan': 'motion', 'qa': 'question',
                  'refer': 'question', 'object_caption': 'description',
                  'scene_caption': 'description'}

_SPECIAL = re.compile(r'(<[a-z_0-9]+>)')


def format_answer(text: str = '', special=()) -> str:
    """Return a training target: text, then special tokens (markers, payload), space-joined."""
    return ' '.join(part for part in (text.strip(), *special) if part)


class TokenSpace:
    """
    Unified ids of the vocabulary, the added tokens and the object slots.

    :param vocab_size: V, the LM's output size
    :param added: the added token strings, in a fixed order
    :param max_objects: K, object slots
    """

    def __init__(self, vocab_size: int, added, max_objects: int):
        self.vocab_size, self.added, self.max_objects = vocab_size, tuple(added), max_objects
        self.added_index = {token: vocab_size + n for n, token in enumerate(self.added)}
        if len(self.added_index) != len(self.added):
            raise ValueError(f'added tokens repeat: {self.added}')
        self.object_start = vocab_size + len(self.added)

    def __len__(self):
        return self.object_start + self.max_objects

    def id_of(self, token: str) -> int:
        """Return the id of an added token or ``<obj_k>``."""
        if token.startswith('<obj_'):
            index = object_index(token)
            if not 0 <= index < self.max_objects:
                raise ValueError(f'{token} is beyond the {self.max_objects} object slots')
            return self.object_start + index
        if token not in self.added_index:
            raise ValueError(f'{token!r} is not an added token of this policy')
        return self.added_index[token]

    def token_of(self, token_id: int, tokenizer) -> str:
        """Return the string of one id."""
        if token_id >= self.object_start:
            return object_token(token_id - self.object_start)
        if token_id >= self.vocab_size:
            return self.added[token_id - self.vocab_size]
        return tokenizer.tokens([token_id])[0]

    def is_text(self, token_id: int) -> bool:
        return token_id < self.vocab_size

    def encode(self, answer: str, tokenizer) -> list:
        """
        Return the ids of a target: text through the tokenizer, special tokens as added ids.

        Text after the prompt starts with a space (the prompt ends in ``ASSISTANT:``).
        """
        ids = []
        for part in _SPECIAL.split(answer):
            if not part.strip():
                continue
            if _SPECIAL.fullmatch(part):
                ids.append(self.id_of(part))
            else:
                ids += tokenizer.encode(' ' + part.strip())
        return ids
