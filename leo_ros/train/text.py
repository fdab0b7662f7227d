"""Scoring generated text (no ROS): token F1 and repeated phrases."""

from leo_ros.sim.world import normalize_answer


def token_f1(prediction: str, reference: str) -> float:
    """Return the token-level F1 (SQuAD style) of two normalised answers."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = {}
    for word in pred:
        common[word] = min(pred.count(word), ref.count(word))
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return float(2 * precision * recall / (precision + recall))


def repeated_phrases(text: str, size: int = 4) -> list:
    """Return the phrases of ``size`` words that occur more than once in a text (lower case)."""
    words = normalize_answer(text).split()
    seen, repeated = set(), []
    for start in range(len(words) - size + 1):
        phrase = ' '.join(words[start:start + size])
        if phrase in seen and phrase not in repeated:
            repeated.append(phrase)
        seen.add(phrase)
    return repeated
