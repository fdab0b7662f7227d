"""
Bounded containers for everything a long-running node keeps (pure Python).

:class:`LRUCache` is a dict with a size limit that forgets the least recently used entry.
:func:`bound_policy_caches` puts one in place of the per-string caches a loaded policy
keeps (the frozen instruction encoder's cache grows by about 34 KB per new instruction
wording when nothing bounds it, and inference fills it).
"""

from collections import OrderedDict
import threading

#: Default number of instruction encodings a serving policy keeps.
DEFAULT_TEXT_CACHE = 2048


class LRUCache(OrderedDict):
    """
    A dict of at most ``maxsize`` entries; reading or writing an entry makes it the newest.

    :param maxsize: the most entries kept; the least recently used go first
    :param items: initial entries (oldest first); only the newest ``maxsize`` are kept
    """

    def __init__(self, maxsize, items=()):
        if int(maxsize) < 1:
            raise ValueError(f'LRUCache.maxsize must be >= 1, got {maxsize}')
        super().__init__()
        self.maxsize = int(maxsize)
        self.evictions = 0
        self._lock = threading.RLock()
        for key, value in dict(items).items():
            self[key] = value

    def __getitem__(self, key):
        with self._lock:
            value = super().__getitem__(key)
            self.move_to_end(key)
            return value

    def get(self, key, default=None):
        with self._lock:
            if key in self:
                return self[key]
            return default

    def __setitem__(self, key, value):
        with self._lock:
            if key in self:
                self.move_to_end(key)
            super().__setitem__(key, value)
            while len(self) > self.maxsize:
                self.popitem(last=False)
                self.evictions += 1

    def __reduce__(self):
        return (type(self), (self.maxsize, list(self.items())))


def _text_encoder(policy):
    """Return the policy's instruction encoder if it has one (without loading a new one)."""
    encoder = getattr(policy, '_text_encoder', None)
    if encoder is None and callable(getattr(policy, 'text_encoder', None)):
        encoder = policy.text_encoder()
    return encoder


def bound_policy_caches(policy, maxsize=DEFAULT_TEXT_CACHE) -> list:
    """
    Replace a loaded policy's unbounded per-string caches by LRU caches of ``maxsize``.

    Covers the instruction encoder's ``cache`` (``InstructionEncoder``) and a ``_text_cache``
    dict on the policy itself. Caches that are already LRUCaches, and caches whose owner bounds
    them itself (a positive ``cache_size``), stay as they are.

    :return: the names of the caches that were bounded
    """
    bounded = []
    targets = [('text_encoder.cache', _text_encoder(policy), 'cache'),
               ('_text_cache', policy, '_text_cache')]
    for name, owner, attribute in targets:
        cache = getattr(owner, attribute, None) if owner is not None else None
        if (getattr(owner, 'cache_size', 0) or 0) > 0:
            continue                            # bounded by its owner already
        if isinstance(cache, dict) and not isinstance(cache, LRUCache):
            setattr(owner, attribute, LRUCache(maxsize, cache))
            bounded.append(name)
    return bounded
