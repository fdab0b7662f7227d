"""Tiny policies, scenes and examples shared by the model and training tests (no ROS)."""

from functools import lru_cache
from pathlib import Path

from leo_ros.actions.grounded import GroundedConfig, GroundedTokenizer
from leo_ros.model.checkpoint import create_policy
from leo_ros.model.config import ImageConfig, LLMConfig, PolicyConfig, SceneConfig
from leo_ros.model.object_encoder import ObjectEncoder, ObjectEncoderConfig
from leo_ros.model.text_tokenizer import TextTokenizer
from leo_ros.scene_tokens import SceneTokens
import numpy as np
import torch

#: object slots of the tiny policies
MAX_OBJECTS = 8
#: layers of the tiny Hugging Face LMs
LAYERS = 2
#: what the tiny BPE is trained on (and what the tests say)
TEXTS = ('Go to the red mug.', 'A red mug on the brown table.', 'Put the mug on the table.',
         'Which object is the box?', 'You are a robot.', 'Yes', 'No') * 10


def tiny_llm(**overrides) -> LLMConfig:
    """Return a 2-layer, 32-wide LM config (the tiny backbone unless ``source`` says)."""
    return LLMConfig(**{'hidden_size': 32, 'layers': 2, 'heads': 2, 'intermediate_size': 64,
                        'bpe_vocab_size': 300, 'lora_r': 4, 'lora_alpha': 8, **overrides})


def tiny_config(llm=None, action_mode='grounded', **scene) -> PolicyConfig:
    """Return a policy config small enough for unit tests; ``scene`` overrides SceneConfig."""
    scene = {'max_objects': MAX_OBJECTS, 'object_embedding': 8, 'width': 32, 'heads': 4,
             **scene}
    return PolicyConfig(scene=SceneConfig(**scene),
                        image=ImageConfig(image_size=(16, 12), channels=(4, 8)),
                        llm=llm or tiny_llm(), action_mode=action_mode,
                        system_prompt='You are a robot.', max_answer_tokens=12)


def tiny_encoder() -> ObjectEncoder:
    """Return a small random object encoder (8-dimensional embeddings)."""
    torch.manual_seed(0)
    return ObjectEncoder(ObjectEncoderConfig(points=16, width=16, embedding=8))


def grounded() -> GroundedTokenizer:
    """Return the grounded action tokenizer of the tiny policies."""
    return GroundedTokenizer(GroundedConfig(max_objects=MAX_OBJECTS))


def make_policy(config=None, action_tokenizer=None, seed=0):
    """Return a fresh tiny policy in eval mode (grounded actions unless told)."""
    action_tokenizer = action_tokenizer or grounded()
    policy = create_policy(config or tiny_config(), tiny_encoder(), action_tokenizer, TEXTS,
                           seed=seed)
    return policy.eval()


@lru_cache(maxsize=1)
def text_encoder():
    """Return the real MiniLM instruction encoder, loaded once per test session."""
    from leo_ros.model.text_encoder import InstructionEncoder
    return InstructionEncoder(40)


def make_scene(count=4, seed=0, ids=None, spread=4.0) -> SceneTokens:
    """Return ``count`` small objects scattered over [0, spread] m (16 points each)."""
    rng = np.random.default_rng(seed)
    clouds = [rng.normal(size=(40, 3)) * 0.1 + rng.uniform(0, spread, size=3)
              for _ in range(count)]
    colors = [rng.uniform(size=(40, 3)) for _ in range(count)]
    return SceneTokens.from_object_clouds(clouds, colors, ids=ids, points_per_object=16)


def make_example(policy, tokens, answer, instruction='Go to the red mug.',
                 pose=(0.0, 0.0, 0.0), image=None):
    """Return the example ``policy.act`` would read, with ``answer`` (text + tokens) as target."""
    example, _ = policy.prepare(tokens, image, instruction, pose, text_encoder=text_encoder())
    ids = policy.space.encode(answer, policy.tokenizer) + [policy.tokenizer.eos_id]
    example.answer = np.asarray(ids, np.int64)
    return example


def act(policy, tokens, instruction='Go to the red mug.', pose=(0.0, 0.0, 0.0), **kwargs):
    """Return ``policy.act`` with the shared MiniLM."""
    return policy.act(tokens, None, instruction, pose, text_encoder=text_encoder(), **kwargs)


def perturb_lora(policy, seed=0):
    """Give LoRA B (zero at the start) values, so that the adapters change the outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in policy.named_parameters():
            if 'lora_B' in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)


def tiny_lm(architecture, tokenizer, seed=0):
    """Return a 2-layer random-weight causal LM of an architecture, ids of ``tokenizer``."""
    import transformers
    torch.manual_seed(seed)
    ids = {'vocab_size': len(tokenizer), 'bos_token_id': tokenizer.bos_id,
           'eos_token_id': tokenizer.eos_id, 'pad_token_id': tokenizer.pad_id}
    if architecture == 'gpt2':
        return transformers.GPT2LMHeadModel(transformers.GPT2Config(
            n_embd=32, n_layer=LAYERS, n_head=4, n_positions=256, **ids))
    sizes = {'hidden_size': 32, 'intermediate_size': 64, 'num_hidden_layers': LAYERS,
             'num_attention_heads': 4, 'num_key_value_heads': 2, **ids}
    if architecture == 'gemma':
        sizes['head_dim'] = 8
    names = {'llama': 'Llama', 'qwen2': 'Qwen2', 'mistral': 'Mistral', 'gemma': 'Gemma',
             'phi3': 'Phi3'}[architecture]
    config = getattr(transformers, f'{names}Config')(**sizes)
    return getattr(transformers, f'{names}ForCausalLM')(config)


def save_lm(directory, architecture='llama', seed=0, bos=True) -> Path:
    """Save a tiny LM and its tokenizer as a Hugging Face directory (Qwen-style: no BOS)."""
    tokenizer = TextTokenizer.train(TEXTS, 300)
    if not bos:
        from transformers import AutoTokenizer
        tokenizer.save(directory)
        tokenizer = TextTokenizer(AutoTokenizer.from_pretrained(str(directory), bos_token=None))
    tiny_lm(architecture, tokenizer, seed).save_pretrained(str(directory))
    tokenizer.save(directory)
    return Path(directory)
