"""
LEO's prompt layout (pure text; the policy splices image and object embeddings in between).

::

    <s>{system} {situation} Ego-view image: <img> Objects (including you) in the scene:
    <embodied token> <object tokens> USER: {instruction} ASSISTANT: {answer}</s>

Only ``{answer}</s>`` carries the loss.
"""

from dataclasses import dataclass

IMAGE_HEADER = 'Ego-view image:'
OBJECTS_HEADER = 'Objects (including you) in the scene:'


@dataclass(frozen=True)
class PromptSegments:
    """The three text pieces around the image token and the object tokens."""

    before_image: str
    before_objects: str
    after_objects: str


def prompt_segments(system: str, instruction: str, situation: str = '') -> PromptSegments:
    """Return LEO's prompt text around the visual tokens."""
    head = system.strip()
    if situation.strip():
        head = f'{head} {situation.strip()}'
    return PromptSegments(before_image=f'{head} {IMAGE_HEADER}'.strip(),
                          before_objects=f' {OBJECTS_HEADER}',
                          after_objects=f' USER: {instruction.strip()} ASSISTANT:')


def format_answer(text: str = '', action_tokens=()) -> str:
    """Return the answer text the model is trained to produce: text, then action tokens."""
    text = text.strip()
    actions = ''.join(action_tokens)
    if text and actions:
        return f' {text} {actions}'
    return f' {text}' if text else actions


#: sentences a BPE can be trained on before the data engine's text exists
BOOTSTRAP_CORPUS = (
    'USER: ASSISTANT: Ego-view image: Objects (including you) in the scene:',
    'Go to the chair. Walk to the table next to the window. Turn left. Turn right. Stop.',
    'Pick up the red mug and place it on the shelf. Put the cup in the sink.',
    'What is on the table? There is a lamp on the desk. The sofa is left of the bed.',
    'Describe the scene. The room has a bed, a desk, two chairs and a cabinet.',
    'How many chairs are there? Three. What colour is the box? It is blue.',
    'Navigate to the door. Move forward. Open the gripper. Close the gripper.',
    'Plan: first go to the kitchen, then pick up the bottle, then bring it to me.',
)
