"""
The LM's text tokenizer (no ROS).

A pretrained backbone brings its own (``from_pretrained``); the tiny backbone gets a byte-level
BPE trained offline on the training text with Hugging Face ``tokenizers`` (``train``). Action
markers and object tokens are not text: the policy adds them beside the vocabulary.
"""

import hashlib
import json
from pathlib import Path

BOS, EOS, PAD, UNK = '<s>', '</s>', '<pad>', '<unk>'


class TextTokenizer:
    """A Hugging Face fast tokenizer with the ids the policy needs."""

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer
        if self.hf.eos_token_id is None:
            raise ValueError('the tokenizer has no end-of-sequence token')
        self._cache = {}

    @classmethod
    def train(cls, texts, vocab_size: int = 3000, min_frequency: int = 2) -> 'TextTokenizer':
        """Train a byte-level BPE on an iterable of strings."""
        from tokenizers import decoders, models, pre_tokenizers, processors, Tokenizer, trainers
        from transformers import PreTrainedTokenizerFast
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
            special_tokens=[PAD, BOS, EOS, UNK],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tokenizer.train_from_iterator(iter(texts), trainer=trainer)
        return cls(PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS,
                                           eos_token=EOS, pad_token=PAD, unk_token=UNK))

    @classmethod
    def from_pretrained(cls, directory) -> 'TextTokenizer':
        from transformers import AutoTokenizer
        return cls(AutoTokenizer.from_pretrained(str(directory), local_files_only=True))

    def save(self, directory):
        self.hf.save_pretrained(str(directory))

    def encode(self, text: str) -> list:
        """Return ids of ``text`` without special tokens (cached: prompts repeat)."""
        ids = self._cache.get(text)
        if ids is None:
            ids = self.hf.encode(text, add_special_tokens=False)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[text] = ids
        return list(ids)

    def decode(self, ids) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=True)

    def tokens(self, ids) -> list:
        return self.hf.convert_ids_to_tokens(list(ids))

    @property
    def bos_id(self):
        """Beginning-of-sequence id, or None (Qwen-style tokenizers have none)."""
        return self.hf.bos_token_id

    @property
    def eos_id(self) -> int:
        return self.hf.eos_token_id

    @property
    def pad_id(self) -> int:
        return self.hf.pad_token_id if self.hf.pad_token_id is not None else self.eos_id

    def __len__(self):
        return len(self.hf)

    def fingerprint(self) -> str:
        """Return a sha256 of the vocabulary (to match a tokenizer to its checkpoint)."""
        vocabulary = json.dumps(sorted(self.hf.get_vocab().items()), separators=(',', ':'))
        return hashlib.sha256(vocabulary.encode()).hexdigest()


def load_tokenizer(directory: Path) -> TextTokenizer:
    """Load a saved tokenizer; a missing or unreadable one raises ValueError naming it."""
    if not Path(directory).is_dir():
        raise ValueError(f'{directory}: tokenizer directory missing')
    try:
        return TextTokenizer.from_pretrained(directory)
    except Exception as error:
        reason = ' '.join(str(error).split())[:200]      # one line
        raise ValueError(f'{directory}: tokenizer cannot be read ({type(error).__name__}: '
                         f'{reason})') from None
