"""
The language model: a Hugging Face causal LM, frozen, with LoRA adapters (peft).

``build_llm`` makes a LLaMA-architecture model from ``LLMConfig`` ('tiny' default, '7b' for
LEO's size, random weights) or loads any causal LM from a local directory. The vocabulary is
resized to the tokenizer (action tokens included); rows of newly added tokens stay trainable
through peft's ``trainable_token_indices`` while the rest of the base is frozen.
"""

from leo_ros.model.config import LLMConfig
import torch

DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}


def is_built_from_config(config: LLMConfig) -> bool:
    """Return True for 'tiny' / '7b' (weights live in our checkpoint, not in a model folder)."""
    return config.source in ('tiny', '7b')


def build_base(config: LLMConfig, vocab_size: int, special_ids: dict):
    """
    Return the base causal LM (no LoRA yet), vocabulary resized to ``vocab_size``.

    :param special_ids: ``{'bos': id, 'eos': id, 'pad': id}`` for a model built from config
    """
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM
    dtype = DTYPES[config.dtype]
    if is_built_from_config(config):
        llama = LlamaConfig(
            vocab_size=vocab_size, hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size, num_hidden_layers=config.layers,
            num_attention_heads=config.heads, num_key_value_heads=config.heads,
            max_position_embeddings=config.max_positions, tie_word_embeddings=False,
            bos_token_id=special_ids['bos'], eos_token_id=special_ids['eos'],
            pad_token_id=special_ids['pad'])
        with torch.device(config.device if config.source == '7b' else 'cpu'):
            model = LlamaForCausalLM(llama).to(dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(config.source, dtype=dtype,
                                                     local_files_only=True)
        if model.get_input_embeddings().num_embeddings < vocab_size:
            model.resize_token_embeddings(vocab_size)
    return model.to(config.device)


def wrap_lora(model, config: LLMConfig, new_token_ids=()):
    """
    Freeze the base (if configured) and add LoRA adapters on ``config.lora_targets``.

    :param new_token_ids: ids added to a pretrained vocabulary; their embedding and output rows
        stay trainable (peft ``trainable_token_indices``)
    :return: a peft model, or the bare model when LoRA is off
    """
    if config.freeze_base:
        model.requires_grad_(False)
    if not config.use_lora:
        return model
    from peft import get_peft_model, LoraConfig
    trainable = None
    if new_token_ids and config.freeze_base:
        trainable = {'embed_tokens': list(new_token_ids), 'lm_head': list(new_token_ids)}
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=list(config.lora_targets),
                      task_type='CAUSAL_LM', trainable_token_indices=trainable)
    model = get_peft_model(model, lora)
    if not config.freeze_base:
        for name, parameter in model.named_parameters():
            if 'lora_' not in name:
                parameter.requires_grad_(True)
    return model


def embed_tokens(model, ids: torch.Tensor) -> torch.Tensor:
    """:param ids: (B, T) -> (B, T, hidden) input embeddings of the (possibly peft) model."""
    return model.get_input_embeddings()(ids)
