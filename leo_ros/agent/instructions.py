"""Checks on instruction text before it reaches the policy (pure Python)."""

import unicodedata

#: Longest instruction accepted, in characters (LEO's prompts are a sentence or two).
MAX_INSTRUCTION_CHARS = 1000


class InstructionError(ValueError):
    """An instruction the agent will not act on; the message says why."""


def clean_instruction(text, max_chars=MAX_INSTRUCTION_CHARS) -> str:
    """
    Return the instruction with whitespace normalised, or raise InstructionError.

    Refuses empty and whitespace-only text, text over ``max_chars``, text with control
    characters, and text without a single letter (garbage such as ``%$#@!``).
    """
    if not isinstance(text, str):
        raise InstructionError(f'instruction must be text, got {type(text).__name__}')
    if len(text) > max_chars:
        raise InstructionError(f'instruction is {len(text)} characters; the limit is '
                               f'{max_chars}')
    cleaned = ' '.join(text.split())
    if not cleaned:
        raise InstructionError('instruction is empty')
    control = [c for c in cleaned if unicodedata.category(c) in ('Cc', 'Cf', 'Cs', 'Co')]
    if control:
        raise InstructionError(f'instruction contains {len(control)} control character(s)')
    if not any(c.isalpha() for c in cleaned):
        raise InstructionError(f'instruction has no words: {cleaned[:40]!r}')
    return cleaned
