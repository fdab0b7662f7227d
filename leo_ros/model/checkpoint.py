"""
Building, saving and loading the policy: one checkpoint format (no ROS).

A policy directory (format ``leo_ros.policy/2``):

- ``config.json``: format, ``PolicyConfig``, the backbone reference (name or path +
  fingerprint), the tokenizer's fingerprint, the added tokens, training extras;
- ``tokenizer/``: the LM's tokenizer (the BPE trained here for 'tiny');
- ``policy.safetensors``: every weight trained here but LoRA: scene and image encoders,
  projections, added tokens, pointer and intent heads; the tiny LM's base weights too;
- ``adapter/``: the LoRA adapter in peft's format (``adapter_config.json``,
  ``adapter_model.safetensors``);
- ``classifier.json``, ``classifier.safetensors``: the frozen object encoder and its category
  head (perception labels objects with it);
- ``grounded.json`` or ``actions/``: the action tokenizer.

A pretrained backbone is not copied: the reference is its name (``smollm2-135m``) or its path,
checked by fingerprint when loading. Weights are safetensors; nothing is unpickled.
"""

import json
from pathlib import Path

from leo_ros.model import backbone
from leo_ros.model.backbone import BackboneError
from leo_ros.model.config import PolicyConfig
from leo_ros.model.object_encoder import ObjectEncoder
from leo_ros.model.policy import LeoPolicy
from leo_ros.model.prompt import ASSISTANT, IMAGE_HEADER, OBJECTS_HEADER, USER
from leo_ros.model.text_tokenizer import load_tokenizer, TextTokenizer
from safetensors.torch import load_file, save_file
import torch

FORMAT = 'leo_ros.policy/2'
#: formats of earlier leo_ros versions -> what to do about them
OLD_FORMATS = {
    'leo_ros.train.policy/1': 'a word-list policy of leo_ros <= 0.6 (its LM reads no words); '
                              'retrain it with leo-train (docs/training.md)',
}


class CheckpointError(ValueError):
    """A policy directory that cannot be loaded; the message names the file and the problem."""


def create_policy(config: PolicyConfig, object_encoder: ObjectEncoder, action_tokenizer,
                  texts=(), seed: int = 0) -> LeoPolicy:
    """
    Build a fresh policy.

    :param texts: training text the tiny backbone's BPE is trained on (ignored for a
        pretrained backbone, which brings its tokenizer)
    """
    torch.manual_seed(seed)
    llm_config = config.llm
    if llm_config.built_here:
        # the prompt's fixed pieces are text the BPE must know too
        corpus = list(texts) + [config.system_prompt,
                                USER + ASSISTANT + IMAGE_HEADER + OBJECTS_HEADER]
        tokenizer = TextTokenizer.train(corpus, llm_config.bpe_vocab_size)
    else:
        tokenizer = load_tokenizer(backbone.pretrained_directory(llm_config.source))
    llm = _build_llm(llm_config, tokenizer)
    if llm_config.gradient_checkpointing:
        llm.gradient_checkpointing_enable()
    return LeoPolicy(config, tokenizer, object_encoder, action_tokenizer, llm)


def _build_llm(llm_config, tokenizer, tokenizer_path=None):
    """
    Return the LM of a config: the tiny LLaMA built for ``tokenizer``, or the pretrained one.

    :param tokenizer_path: where ``tokenizer`` came from, named when it does not fit the
        pretrained LM (default: the LM's directory)
    """
    if llm_config.built_here:
        special = {'bos': tokenizer.bos_id, 'eos': tokenizer.eos_id, 'pad': tokenizer.pad_id}
        return backbone.build_tiny(llm_config, len(tokenizer), special)
    directory = backbone.pretrained_directory(llm_config.source)
    llm = backbone.load_pretrained(directory, llm_config.dtype, llm_config.device)
    rows = llm.get_output_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        raise CheckpointError(f'{tokenizer_path or directory}: the tokenizer has '
                              f'{len(tokenizer)} tokens but the LM only {rows} output rows '
                              '(tokenizer does not match the model)')
    return llm


def _in_policy_file(name: str, built_here: bool) -> bool:
    """
    Whether a weight is stored in ``policy.safetensors``.

    Not the object encoder (``classifier.safetensors``), not LoRA (``adapter/``), not the base
    of a pretrained LM (referenced, never copied).
    """
    return not (name.startswith('object_encoder.') or 'lora_' in name
                or (name.startswith('llm.') and not built_here))


def trained_state(policy: LeoPolicy, lora=False) -> dict:
    """
    Return the weights trained here: not the frozen object encoder, nor a pretrained LM.

    :param lora: include the LoRA weights too (a stage's final state); a policy directory
        keeps them in ``adapter/``
    """
    built_here = policy.config.llm.built_here
    return {name: tensor.detach().clone().contiguous().cpu()
            for name, tensor in policy.state_dict().items()
            if _in_policy_file(name, built_here) or (lora and 'lora_' in name)}


def save_policy(policy: LeoPolicy, directory, extra=None):
    """Write a policy directory (see the module docstring)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(trained_state(policy), str(directory / 'policy.safetensors'))
    policy.tokenizer.save(directory / 'tokenizer')
    policy.object_encoder.save(directory)
    policy.action_tokenizer.save(directory if policy.config.action_mode == 'grounded'
                                 else directory / 'actions')
    if policy.config.lora:
        backbone.save_adapter(policy.llm, directory / 'adapter')
    meta = {'format': FORMAT, 'policy': policy.config.to_dict(),
            'backbone': backbone.describe(policy.config.llm.source),
            'tokenizer_fingerprint': policy.tokenizer.fingerprint(),
            'added_tokens': list(policy.space.added), **(extra or {})}
    (directory / 'config.json').write_text(json.dumps(meta, indent=2))


def read_meta(directory) -> dict:
    """Return a policy directory's config.json, refusing other formats with a clear reason."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f'{directory}: no such model directory')
    path = directory / 'config.json'
    try:
        meta = backbone.read_json(path)
    except BackboneError as error:
        raise CheckpointError(str(error)) from None
    found = meta.get('format', '')
    if found in OLD_FORMATS:
        raise CheckpointError(f'{path}: format {found}: {OLD_FORMATS[found]}')
    if found != FORMAT:
        raise CheckpointError(f'{path}: not a leo_ros policy (format {found!r}, expected '
                              f'{FORMAT!r}); a plain Hugging Face model is a backbone: train a '
                              'policy on it with leo-train --llm DIR')
    return meta


def load_policy_dir(directory, device: str = None, dtype: str = None) -> LeoPolicy:
    """
    Load a policy directory; ``device`` / ``dtype`` override where and how the LM runs.

    Outputs are reproduced exactly. Every failure is a ``CheckpointError`` (or
    ``BackboneError``) whose message names the file and what is wrong.
    """
    directory = Path(directory)
    meta = read_meta(directory)
    data = dict(meta['policy'])
    data['llm'] = dict(data['llm'])
    if device is not None:
        data['llm']['device'] = device
    if dtype is not None:
        data['llm']['dtype'] = dtype
    lora = data.get('lora', False)
    data['lora'] = False
    config = PolicyConfig.from_dict(data)
    config.llm.source = backbone.check_reference(meta['backbone'], directory)
    tokenizer = load_tokenizer(directory / 'tokenizer')
    if tokenizer.fingerprint() != meta.get('tokenizer_fingerprint'):
        raise CheckpointError(f'{directory / "tokenizer"}: tokenizer does not match the '
                              'checkpoint (vocabulary fingerprint differs)')
    try:
        encoder = ObjectEncoder.load(directory)
    except Exception as error:
        raise CheckpointError(f'{directory / "classifier.safetensors"}: object encoder cannot '
                              f'be read ({type(error).__name__}: {str(error)[:200]})') from None
    action_tokenizer = _load_actions(config.action_mode, directory)
    llm = _build_llm(config.llm, tokenizer, directory / 'tokenizer')
    policy = LeoPolicy(config, tokenizer, encoder, action_tokenizer, llm)
    if list(policy.space.added) != meta.get('added_tokens'):
        raise CheckpointError(f'{directory / "config.json"}: added tokens differ from the '
                              'action tokenizer')
    if lora:
        policy.add_lora()
        backbone.load_adapter(policy.llm, directory / 'adapter')
    _load_weights(policy, directory / 'policy.safetensors')
    policy.meta = meta
    return policy.eval()


def _load_actions(mode, directory):
    try:
        if mode == 'grounded':
            from leo_ros.actions.grounded import GroundedTokenizer
            return GroundedTokenizer.load(directory)
        from leo_ros.actions.tokenizers import ActionCodec
        return ActionCodec.load(directory / 'actions')
    except (OSError, ValueError, KeyError) as error:
        raise CheckpointError(f'{directory}: action tokenizer cannot be read ({error})') \
            from None


def _load_weights(policy, path):
    # a policy on 'meta' (structure only) reads the file on the CPU and keeps only the shapes
    meta = policy.device.type == 'meta'
    try:
        state = load_file(str(path), device='cpu' if meta else str(policy.device))
    except Exception as error:
        raise CheckpointError(f'{path}: not a readable safetensors file '
                              f'({type(error).__name__}: {str(error)[:200]})') from None
    dtypes = {name: tensor.dtype for name, tensor in policy.state_dict().items()}
    state = {k: v.to(dtypes[k]) if k in dtypes else v for k, v in state.items()}
    if meta:
        state = {k: v.to('meta') for k, v in state.items()}
    missing, unexpected = policy.load_state_dict(state, strict=False)
    missing = [k for k in missing if _in_policy_file(k, policy.config.llm.built_here)]
    if missing or unexpected:
        raise CheckpointError(f'{path}: weights do not match the config: missing {missing[:5]}, '
                              f'unexpected {unexpected[:5]}')
