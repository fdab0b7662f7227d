"""
How much accelerator memory training a backbone takes: an estimate from its config (no ROS).

The backbone is built on PyTorch's ``meta`` device (no weights are read or allocated), its
parameters and the LoRA adapters on the configured targets are counted, and activation memory
follows Korthikanti et al. (2022, "Reducing activation recomputation in large transformer
models"): per layer and sequence ``s * b * h * (34 + 5 * a * s / h)`` bytes in 16-bit, or only
the layer inputs (``2 * s * b * h``) plus one layer's activations with gradient checkpointing.
The frozen base is stored in the LM's dtype, LoRA weights and their AdamW states in float32.
This is an estimate, not a measurement: allocator slack and the framework's own buffers come on
top (about 1-2 GB on a GPU).
"""

from dataclasses import dataclass

GIB = 1024 ** 3
BYTES = {'float32': 4, 'bfloat16': 2, 'float16': 2}


@dataclass
class MemoryEstimate:
    """One row of the memory table [GiB]."""

    batch: int
    tokens: int
    weights: float
    lora_and_optimizer: float
    activations: float

    @property
    def total(self) -> float:
        return self.weights + self.lora_and_optimizer + self.activations


def meta_backbone(source: str):
    """Return the backbone built on the meta device from its config (no weights read)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig
    from leo_ros.model import backbone
    if source == 'llama-7b':   # LEO's Vicuna-7B sizes
        config = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                             num_attention_heads=32, num_key_value_heads=32, vocab_size=32000)
    else:
        config = AutoConfig.from_pretrained(str(backbone.pretrained_directory(source)),
                                            local_files_only=True)
    with torch.device('meta'):
        return AutoModelForCausalLM.from_config(config)


def estimate(source: str, dtype='bfloat16', lora_r=16, lora_targets=('auto',),
             batches=(1, 4, 8, 16, 32), tokens=128, checkpointing=False) -> list:
    """
    Return ``MemoryEstimate`` rows for training LoRA on a backbone.

    :param source: a backbone source (``LLMConfig.source``) or 'llama-7b'
    :param tokens: sequence length (prompt + answer)
    """
    from leo_ros.model import backbone
    model = meta_backbone(source)
    config = model.config
    hidden, layers = config.hidden_size, config.num_hidden_layers
    heads = config.num_attention_heads
    weights = sum(p.numel() for p in model.parameters()) * BYTES[dtype]
    names = backbone.lora_target_modules(model, tuple(lora_targets))
    lora = 0
    for name, module in model.named_modules():
        if name.split('.')[-1] in names and hasattr(module, 'weight'):
            rows, columns = module.weight.shape[:2]
            lora += lora_r * (rows + columns)
    # fp32 weights + gradients + two AdamW moments
    lora_bytes = lora * 4 * 4
    rows = []
    for batch in batches:
        per_layer = tokens * batch * hidden * (34 + 5 * heads * tokens / hidden)
        if checkpointing:
            activations = layers * 2 * tokens * batch * hidden + per_layer
        else:
            activations = layers * per_layer
        rows.append(MemoryEstimate(batch, tokens, weights / GIB, lora_bytes / GIB,
                                   activations / GIB))
    return rows


def table(rows, title) -> str:
    """Return a Markdown table of estimates."""
    lines = [f'{title}', '', '| batch | tokens | weights | LoRA + AdamW | activations | total |',
             '| ---: | ---: | ---: | ---: | ---: | ---: |']
    for row in rows:
        lines.append(f'| {row.batch} | {row.tokens} | {row.weights:.1f} | '
                     f'{row.lora_and_optimizer:.2f} | {row.activations:.1f} | {row.total:.1f} |')
    return '\n'.join(lines)
