"""
Offline text tokenizer with action tokens, and the constrained-decoding logits processor.

``TextTokenizer.train`` fits a byte-level BPE with Hugging Face ``tokenizers`` on any iterable
of strings or text files (the data engine's instructions and answers); ``from_pretrained``
reads any local Hugging Face tokenizer. Action token strings (markers and payloads from
``ActionCodec``) are added to the vocabulary as unsplittable special tokens.

``ActionGrammarProcessor`` enforces the action grammar during generation: outside an action,
payload tokens are forbidden; after a marker exactly the allowed payload tokens of each position
may follow, then only end-of-sequence.
"""

from pathlib import Path

import torch

BOS, EOS, PAD, UNK = '<s>', '</s>', '<pad>', '<unk>'


class TextTokenizer:
    """A Hugging Face fast tokenizer plus the action vocabulary."""

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer
        if self.hf.pad_token is None:
            self.hf.pad_token = self.hf.eos_token or EOS

    @classmethod
    def train(cls, texts, vocab_size: int = 2000, min_frequency: int = 2) -> 'TextTokenizer':
        """
        Train a byte-level BPE offline.

        :param texts: an iterable of strings (texts) and/or ``pathlib.Path`` (UTF-8 text files)
        """
        from tokenizers import decoders, models, pre_tokenizers, processors, Tokenizer, trainers
        from transformers import PreTrainedTokenizerFast

        def lines():
            for item in texts:
                if isinstance(item, Path):
                    with open(item, encoding='utf-8') as handle:
                        yield from handle
                else:
                    yield item

        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
            special_tokens=[PAD, BOS, EOS, UNK],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tokenizer.train_from_iterator(lines(), trainer=trainer)
        return cls(PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS,
                                           eos_token=EOS, pad_token=PAD, unk_token=UNK))

    @classmethod
    def from_pretrained(cls, directory) -> 'TextTokenizer':
        from transformers import AutoTokenizer
        return cls(AutoTokenizer.from_pretrained(str(directory), local_files_only=True))

    def save(self, directory):
        self.hf.save_pretrained(str(directory))

    def add_action_tokens(self, tokens) -> list:
        """Add action token strings (idempotent); return their ids in the given order."""
        missing = [token for token in tokens if token not in self.hf.get_vocab()]
        if missing:
            self.hf.add_tokens(missing, special_tokens=True)
        return self.ids(tokens)

    def ids(self, tokens) -> list:
        """Map token strings to ids; an unknown string raises KeyError naming it."""
        vocabulary = self.hf.get_vocab()
        try:
            return [vocabulary[token] for token in tokens]
        except KeyError as error:
            raise KeyError(f'token {error.args[0]!r} is not in the vocabulary') from None

    def tokens(self, ids) -> list:
        return self.hf.convert_ids_to_tokens(list(ids))

    def encode(self, text: str) -> list:
        """Return ids of ``text`` without BOS/EOS (action token strings stay whole)."""
        return self.hf.encode(text, add_special_tokens=False)

    def decode(self, ids) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=False)

    @property
    def bos_id(self):
        return self.hf.bos_token_id

    @property
    def eos_id(self):
        return self.hf.eos_token_id

    @property
    def pad_id(self):
        return self.hf.pad_token_id

    def __len__(self):
        return len(self.hf)


class ActionGrammarProcessor:
    """
    A transformers ``LogitsProcessor``: only grammatical action tokens can be generated.

    :param grammar: ``{marker_id: [allowed ids per payload position]}``
    :param payload_ids: every payload token id (forbidden outside an action)
    :param eos_id: the token that must end an action
    :param vocab_size: width of the logits
    :param prompt_length: tokens of ``input_ids`` that are prompt, not generated
    """

    def __init__(self, grammar: dict, payload_ids, eos_id: int, vocab_size: int,
                 prompt_length: int = 0):
        self.grammar, self.payload_ids = grammar, list(payload_ids)
        self.vocab_size = vocab_size
        self.prompt_length = prompt_length
        self.eos_id = eos_id
        self.markers = {}
        for marker, positions in grammar.items():
            masks = []
            for allowed in positions:
                mask = torch.zeros(vocab_size, dtype=torch.bool)
                mask[list(allowed)] = True
                masks.append(mask)
            self.markers[marker] = masks
        self.free = torch.ones(vocab_size, dtype=torch.bool)
        self.free[list(payload_ids)] = False
        self.end = torch.zeros(vocab_size, dtype=torch.bool)
        self.end[eos_id] = True

    def requiring_action(self, marker_ids) -> 'ActionGrammarProcessor':
        """
        Return a copy whose output must be one action, opened by one of ``marker_ids``.

        Outside an action only those markers are allowed, so the first token is a marker.
        """
        copy = ActionGrammarProcessor.__new__(ActionGrammarProcessor)
        copy.__dict__.update(self.__dict__)
        copy.free = torch.zeros_like(self.free)
        copy.free[list(marker_ids)] = True
        return copy

    def allowed(self, generated) -> torch.Tensor:
        """Return the (V,) bool mask of tokens allowed after ``generated`` (a list of ids)."""
        for back, token in enumerate(reversed(generated)):
            if token in self.markers:
                positions = self.markers[token]
                return positions[back] if back < len(positions) else self.end
        return self.free

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor):
        """(R, T) ids so far, (R, V) scores -> scores with forbidden tokens at -inf."""
        width = scores.shape[-1]
        masks = torch.stack([self.allowed(row[self.prompt_length:].tolist())[:width]
                             for row in input_ids]).to(scores.device)      # (R, V)
        return scores.masked_fill(~masks, float('-inf'))
