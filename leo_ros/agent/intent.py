"""
What an instruction asks for, read from its sentence form alone (pure Python, no model).

:func:`instruction_intent` sorts an instruction into ``'motion'`` (an imperative, or a polite
request, whose verb moves the robot or an object: "Go to the mug", "Can you put the mug on
the plate?"), ``'question'`` ("What is on the table?", "Count the mugs", "Can you find a red
mug?"), ``'description'`` ("Describe the room", "Paint me a picture of the mug in words") or
``'other'`` (no recognisable form). Only ``'motion'`` may move the robot; every other intent,
and any sentence of a longer instruction that is a question or a description, keeps it still.

The check is deliberately apart from the policy: the robot moves only when the words of the
instruction ask for motion, whatever action tokens the model decodes. :func:`motion_allowed`
combines it with the model's own intent (``Decision.intent``) when the model has one: both
must say motion.
"""

import re

MOTION = 'motion'
QUESTION = 'question'
DESCRIPTION = 'description'
OTHER = 'other'
INTENTS = (MOTION, QUESTION, DESCRIPTION, OTHER)

#: Verbs whose imperative moves the base, the arm or an object.
MOTION_VERBS = frozenset((
    'go', 'navigate', 'drive', 'move', 'walk', 'head', 'approach', 'come', 'proceed', 'travel',
    'return', 'turn', 'rotate', 'spin', 'step', 'back', 'reverse', 'advance', 'stop', 'halt',
    'face', 'position', 'park', 'put', 'place', 'set', 'take', 'bring', 'fetch', 'carry',
    'deliver', 'relocate', 'transfer', 'lift', 'lower', 'grab', 'grasp', 'pick', 'drop', 'push',
    'pull', 'hand', 'get', 'tidy', 'stack', 'retrieve', 'collect', 'leave', 'follow', 'reach',
    'roll', 'drag', 'slide', 'shift', 'load', 'unload', 'clear', 'find', 'visit', 'stand',
    'wait', 'rush', 'hurry', 'run', 'race', 'speed', 'dock', 'make', 'hold', 'release',
))
#: Verbs that ask for a text about something (a caption, a summary, a picture in words).
DESCRIPTION_VERBS = frozenset((
    'describe', 'caption', 'summarize', 'summarise', 'explain', 'list', 'paint', 'depict',
    'portray', 'sketch', 'narrate', 'characterize', 'characterise', 'detail', 'outline',
    'picture', 'illustrate', 'write', 'draw', 'recount', 'present', 'introduce', 'show',
    'enumerate', 'give', 'talk', 'speak', 'comment', 'elaborate', 'render', 'imagine',
))
#: Verbs that ask for an answer (imperative questions: "Count the mugs", "Name the object").
QUESTION_VERBS = frozenset((
    'tell', 'count', 'name', 'identify', 'report', 'say', 'compare', 'guess', 'determine',
    'check', 'confirm', 'verify', 'answer', 'estimate', 'measure', 'judge', 'decide', 'look',
    'see', 'spot', 'notice', 'wonder', 'know', 'think', 'let', 'state', 'specify', 'predict',
    'classify', 'recognize', 'recognise', 'detect', 'inspect', 'examine', 'observe', 'search',
    'locate', 'mention', 'point', 'assess', 'evaluate', 'rate', 'calculate', 'figure', 'ask',
))
WH_WORDS = frozenset(('what', 'which', 'where', 'who', 'whom', 'whose', 'why', 'how', 'when'))
AUXILIARIES = frozenset((
    'is', 'are', 'am', 'was', 'were', 'do', 'does', 'did', 'has', 'have', 'had', 'can', 'could',
    'would', 'will', 'should', 'shall', 'may', 'might', 'must', 'isnt', 'arent', 'dont',
    'doesnt', 'didnt', 'cant', 'couldnt', 'wouldnt', 'wont', 'shouldnt', 'hasnt', 'havent',
))
#: Words a request may start with that say nothing about its form.
FILLERS = frozenset(('please', 'ok', 'okay', 'hey', 'hi', 'hello', 'now', 'kindly', 'then',
                     'so', 'alright', 'and', 'also', 'first', 'next', 'finally', 'just',
                     'quickly', 'robot', 'leo', 'agent', 'right', 'well', 'oh', 'yes', 'sure'))
#: "I want you next to the chair": where a body can be put.
PLACE_WORDS = frozenset(('next', 'near', 'beside', 'by', 'in', 'at', 'over', 'close', 'here',
                         'there', 'on', 'onto', 'to', 'behind', 'facing', 'opposite', 'nearer',
                         'closer', 'alongside', 'against', 'under', 'beneath', 'inside'))
#: "Take a look", "give me a picture": motion or neutral verbs that ask for text here.
TEXT_OBJECTS = frozenset(('look', 'glance', 'picture', 'description', 'caption', 'summary',
                          'overview', 'account', 'portrait', 'sketch', 'list', 'answer',
                          'report', 'count', 'tour', 'rundown', 'word', 'words', 'guess',
                          'number', 'name', 'idea', 'impression', 'story', 'poem'))
KNOW_VERBS = frozenset(('know', 'see', 'hear', 'learn', 'understand', 'find', 'check',
                        'confirm', 'ask'))

_SENTENCES = re.compile(r'(?<=[.?!;])\s+|\n+')
_CLAUSES = re.compile(r'\s*(?:,|;|:|\band then\b|\bthen\b|\band\b|\bafter that\b)\s*')
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_CONTRACTIONS = {"let's": ['let', 'us'], "won't": ['will', 'not'], "can't": ['can', 'not'],
                 "i'd": ['i', 'would']}
_TAILS = {'s': 'is', 're': 'are', 'm': 'am', 'd': 'would', 'll': 'will', 've': 'have'}
_PRIORITY = {DESCRIPTION: 0, QUESTION: 1, OTHER: 2, MOTION: 3}


def _words(text):
    """Return the lower-case words of ``text``, contractions spelled out ("i'd" -> i would)."""
    words = []
    for word in _WORD.findall(text.lower().replace('\u2019', "'")):
        stem, _, tail = word.partition("'")
        if word in _CONTRACTIONS:
            words.extend(_CONTRACTIONS[word])
        elif tail == 't':
            words.append(stem + 't')            # isn't -> isnt (kept as one auxiliary)
        elif tail:
            words.extend([stem, _TAILS.get(tail, tail)])
        else:
            words.append(word)
    return words


def _strip_lead(words):
    """Drop fillers and leading phrasing that does not change the form ("go ahead and")."""
    words = list(words)
    changed = True
    while words and changed:
        changed = False
        if words[0] in FILLERS:
            words, changed = words[1:], True
        elif words[:3] == ['go', 'ahead', 'and'] or words[:3] == ['go', 'on', 'and']:
            words, changed = words[3:], True
        elif words[:2] == ['let', 'us']:
            words, changed = words[2:], True
        elif words[:2] in (['you', 'should'], ['you', 'must'], ['you', 'need'], ['try', 'to'],
                           ['you', 'can'], ['you', 'may']):
            words, changed = words[2:], True
        elif words[:1] == ['to']:
            words, changed = words[1:], True
    return words


def _after_you(words, start):
    """Return the words after "you (please)" at ``start``, or None when "you" is not there."""
    if len(words) <= start or words[start] != 'you':
        return None
    rest = words[start + 1:]
    while rest and rest[0] in ('please', 'kindly', 'just', 'now', 'also'):
        rest = rest[1:]
    return rest


def _verb_intent(words):
    """Intent of an imperative clause that starts with ``words[0]`` (None: not a verb)."""
    verb, rest = words[0], words[1:]
    if verb in DESCRIPTION_VERBS:
        return DESCRIPTION
    if verb in QUESTION_VERBS:
        return QUESTION
    if verb in MOTION_VERBS:
        return _motion_verb_intent(verb, rest)
    return None


def _motion_verb_intent(verb, rest):
    """Imperatives of motion verbs that still ask for text ("take a look", "make a guess")."""
    head = [w for w in rest[:3] if w not in ('a', 'an', 'the', 'me', 'us', 'quick', 'short',
                                             'brief', 'good', 'close', 'closer')]
    if head and head[0] in TEXT_OBJECTS:
        return QUESTION
    if verb == 'find' and rest[:1] and rest[0] in ('out', 'how', 'what', 'whether', 'if',
                                                   'which', 'where', 'who', 'why'):
        return QUESTION
    if verb == 'walk' and rest[:2] == ['me', 'through']:
        return DESCRIPTION
    if verb == 'make':
        if rest[:2] in (['your', 'way'], ['a', 'plan'], ['sure', 'that']) or rest[:1] == ['sure']:
            return MOTION
        return OTHER
    if verb == 'get' and rest[:1] and rest[0] in ('me', 'us') and len(rest) > 1 and \
            rest[1] in ('a', 'an', 'the') and rest[-1:] and rest[-1] in TEXT_OBJECTS:
        return QUESTION
    if verb == 'look' and rest[:1] == ['around']:
        return MOTION
    return MOTION


def _request_intent(words):
    """
    Intent of a sentence that addresses the robot: "can you ...", "I want you ...".

    :return: an intent, or None when the sentence is not such a request
    """
    if words[0] in ('can', 'could', 'would', 'will', 'wont', 'cant', 'couldnt', 'wouldnt'):
        rest = _after_you(words, 1)
        if rest is None:
            return QUESTION
        if rest[:1] == ['mind'] and len(rest) > 1:
            rest = [rest[1][:-3] if rest[1].endswith('ing') else rest[1]] + rest[2:]
        if rest[:2] == ['like', 'to'] or rest[:2] == ['be', 'able']:
            return QUESTION
        if not rest or rest[0] in ('find', 'reach', 'see', 'spot'):
            return QUESTION         # "can you find a red mug?" asks whether there is one
        return _verb_intent(rest) or QUESTION
    if words[0] == 'i' and len(words) > 1:
        verb = words[1]
        rest = words[2:]
        if verb in ('want', 'need', 'wish', 'would'):
            if verb == 'would' and rest[:1] in (['like'], ['love']):
                rest = rest[1:]
            if rest[:1] == ['to'] and len(rest) > 1:
                return QUESTION if rest[1] in KNOW_VERBS else DESCRIPTION \
                    if rest[1] in DESCRIPTION_VERBS else None
            after = _after_you(rest, 0)
            if after is not None:
                if after[:1] == ['to'] and len(after) > 1:
                    return _verb_intent(after[1:]) or OTHER
                if after and after[0] in PLACE_WORDS:
                    return MOTION
                return _verb_intent(after) if after else OTHER
            somewhere = ('on', 'onto', 'in', 'at', 'next', 'near', 'beside', 'by', 'under',
                         'behind')
            if verb in ('need', 'want') and rest[:1] and \
                    rest[0] in ('the', 'a', 'an', 'this', 'that', 'my') and \
                    any(w in somewhere for w in rest[1:]):
                return MOTION        # "I need the mug on the table"
            return OTHER
        if verb in ('wonder', 'think', 'guess', 'believe', 'suppose', 'bet'):
            return QUESTION
    return None


def _clause_intent(words):
    """Intent of one clause (words already lower case, fillers removed)."""
    words = _strip_lead(words)
    if not words:
        return None
    request = _request_intent(words)
    if request is not None:
        return request
    first = words[0]
    if first in WH_WORDS or first in AUXILIARIES:
        return QUESTION
    if first in ('tell', 'let') and len(words) > 1 and words[1] in ('me', 'us'):
        rest = words[2:]
        if rest[:1] == ['know']:
            return QUESTION
        sees = rest[:2] == ['what', 'you'] and 'see' in rest[2:4]
        if rest[:1] in (['about'], ['something']) or sees:
            return DESCRIPTION
        return QUESTION
    manner = ('words', 'word', 'sentence', 'sentences', 'detail', 'brief', 'short')
    if first in ('in', 'using', 'with') and any(w in manner for w in words[1:4]):
        return _clause_intent(words[3:]) if len(words) > 3 else DESCRIPTION
    return _verb_intent(words)


def _sentence_intent(sentence):
    """Intent of one sentence: its clauses' intents, the least motion-like one wins."""
    text = sentence.strip()
    words = _words(text)
    if not words:
        return None
    if any(w in ('words', 'word') for w in words) and \
            any(w in ('in', 'with', 'using', 'into') for w in words):
        return DESCRIPTION          # "paint me a picture of ... in words"
    intents = []
    for clause in _CLAUSES.split(text.lower()):
        intent = _clause_intent(_words(clause))
        if intent is not None:
            intents.append(intent)
        if len(intents) == 1 and intents[0] in (QUESTION, DESCRIPTION):
            break               # the first clause sets the form ("how many ... and ...")
    if not intents:
        return QUESTION if text.endswith('?') else OTHER
    intent = min(intents, key=_PRIORITY.get)
    if intent in (MOTION, OTHER) and text.endswith('?') and intents[0] != MOTION:
        return QUESTION
    return intent


def instruction_intent(text) -> str:
    """
    Return what ``text`` asks for: 'motion', 'question', 'description' or 'other'.

    A text of several sentences is a motion only when every sentence is one: "Go to the
    table. What is on it?" is a question.
    """
    if not isinstance(text, str) or not text.strip():
        return OTHER
    intents = [i for i in (_sentence_intent(s) for s in _SENTENCES.split(text.strip())) if i]
    if not intents:
        return OTHER
    return min(intents, key=_PRIORITY.get)


def motion_allowed(rule_intent, model_intent='') -> bool:
    """
    Return whether an action may move the robot.

    It may when the words ask for motion, and so does the model when it has an intent head
    (``model_intent`` '' means it has none).
    """
    return rule_intent == MOTION and (model_intent or MOTION) == MOTION
