"""
One training stage (no ROS).

AdamW, linear warmup + cosine decay, gradient clipping, mixed precision on GPU, checkpoints with
their config, resume, and multi-GPU through Hugging Face accelerate (an ``Accelerator`` is used
on CPU too, so the same code runs everywhere).
"""

from dataclasses import asdict, dataclass
import json
from pathlib import Path
import time
import zlib

from leo_ros.model.batch import collate
import numpy as np
from safetensors.torch import load_file, save_file
import torch


@dataclass
class StageConfig:
    """
    One stage's optimisation settings.

    :param name: 'stage1' or 'stage2'
    :param steps: optimisation steps
    :param batch_size: examples per optimisation step and process (``accumulation``
        micro-batches of ``batch_size // accumulation``)
    :param accumulation: gradient accumulation: micro-batches per optimisation step
    :param lr: peak learning rate
    :param warmup: warmup steps (linear), then cosine decay to 0
    :param weight_decay: AdamW weight decay
    :param clip: gradient norm clip
    :param llm: 'full' (train the LM; tiny only), 'lora' (LoRA adapters only), 'frozen', or
        'auto' (the tiny LM fully in stage 1, LoRA otherwise)
    :param replay: share of stage-1 examples mixed into stage 2
    :param text_dropout: share of instruction word pieces hidden per example (not the first),
        so that no single wording is learned by heart
    :param loss_weighting: 'token' (every answer token counts the same, so long answers
        dominate) or 'sample' (each answer's mean token loss counts the same, so a one-word QA
        answer weighs as much as a plan)
    :param log_every: steps between metric lines
    :param eval_every: steps between validation passes
    :param checkpoint_every: steps between resumable checkpoints
    :param val_batches: validation batches per pass
    """

    name: str = 'stage1'
    steps: int = 1000
    batch_size: int = 32
    accumulation: int = 1
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.01
    clip: float = 1.0
    llm: str = 'auto'
    replay: float = 0.0
    text_dropout: float = 0.0
    loss_weighting: str = 'token'
    log_every: int = 25
    eval_every: int = 250
    checkpoint_every: int = 250
    val_batches: int = 8

    def __post_init__(self):
        for name in ('steps', 'batch_size', 'accumulation', 'log_every', 'eval_every',
                     'checkpoint_every', 'val_batches'):
            if getattr(self, name) < 1:
                raise ValueError(f'StageConfig.{name} must be >= 1, got {getattr(self, name)}')
        if not self.lr > 0 or self.warmup < 0 or self.weight_decay < 0 or not self.clip > 0:
            raise ValueError(f'StageConfig {self.name}: lr and clip must be > 0, warmup and '
                             f'weight_decay >= 0; got lr={self.lr}, warmup={self.warmup}, '
                             f'weight_decay={self.weight_decay}, clip={self.clip}')
        if self.llm not in ('auto', 'full', 'lora', 'frozen'):
            raise ValueError(f'StageConfig.llm must be auto, full, lora or frozen, got '
                             f'{self.llm!r}')
        if not 0 <= self.replay < 1:
            raise ValueError(f'StageConfig.replay must be in [0, 1), got {self.replay}')
        if self.loss_weighting not in ('token', 'sample'):
            raise ValueError(f'StageConfig.loss_weighting must be token or sample, '
                             f'got {self.loss_weighting!r}')
        if not 0 <= self.text_dropout < 1:
            raise ValueError(f'StageConfig.text_dropout must be in [0, 1), '
                             f'got {self.text_dropout}')


def cpu_autocast(model):
    """Return bf16 autocast on the CPU when the LM's weights are bf16 (else a no-op)."""
    enabled = model.device.type == 'cpu' and model.llm_dtype == torch.bfloat16
    return torch.autocast('cpu', dtype=torch.bfloat16, enabled=enabled)


def lr_factor(step, warmup, total) -> float:
    """Return the learning-rate multiplier: linear warmup, then cosine decay to zero."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = (step - warmup) / max(total - warmup, 1)
    return 0.5 * (1.0 + np.cos(np.pi * min(progress, 1.0)))


def save_optimizer(optimizer, path):
    """Write an optimizer's state as safetensors (tensors) + JSON (the rest): no pickles."""
    state = optimizer.state_dict()
    tensors, meta = {}, {'param_groups': state['param_groups'], 'state': {}}
    for index, values in state['state'].items():
        meta['state'][str(index)] = {}
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f'{index}.{key}'] = value.contiguous().cpu()
                meta['state'][str(index)][key] = None
            else:
                meta['state'][str(index)][key] = value
    save_file(tensors, str(path) + '.safetensors')
    Path(str(path) + '.json').write_text(json.dumps(meta))


def load_optimizer(optimizer, path):
    """Inverse of :func:`save_optimizer`."""
    tensors = load_file(str(path) + '.safetensors')
    meta = json.loads(Path(str(path) + '.json').read_text())
    state = {}
    for index, values in meta['state'].items():
        state[int(index)] = {key: tensors[f'{index}.{key}'] if value is None else value
                             for key, value in values.items()}
    optimizer.load_state_dict({'state': state, 'param_groups': meta['param_groups']})


def _trainable_state(model):
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()
            if k in names}


def run_stage(model, train_examples, val_examples, config: StageConfig, out_dir, log,
              seed=0, progress=True, mixed_precision=True, replay_examples=()):
    """
    Train one stage; resumes from ``out_dir/<name>/checkpoint*`` when one exists.

    :param model: ``LeoPolicy`` with the stage's trainable parameters set
    :param log: ``f(dict)`` that appends a metrics line
    :return: the unwrapped model
    """
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from tqdm import tqdm
    use_gpu = model.device.type == 'cuda'
    # some heads see no gradient in a batch without their marks (multi-GPU needs to know)
    accelerator = Accelerator(cpu=not use_gpu,
                              mixed_precision='bf16' if use_gpu and mixed_precision else 'no',
                              kwargs_handlers=[DistributedDataParallelKwargs(
                                  find_unused_parameters=True)])
    stage_dir = Path(out_dir) / config.name
    stage_dir.mkdir(parents=True, exist_ok=True)
    parameters = model.trainable_parameters()
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay,
                                  betas=(0.9, 0.98))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, config.warmup, config.steps))
    start = _resume(model, optimizer, scheduler, stage_dir, config, log)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    raw = accelerator.unwrap_model(model)
    began = time.perf_counter()
    bar = tqdm(range(start, config.steps), desc=config.name, initial=start, total=config.steps,
               disable=not progress or not accelerator.is_main_process)
    totals = {}
    for step in bar:
        model.train()
        out, grad_norm = _optimisation_step(model, raw, train_examples, replay_examples, config,
                                            accelerator, parameters, seed, step)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        for key in ('loss', 'correct', 'count', 'grounding_loss'):
            if key in out:
                totals[key] = totals.get(key, 0.0) + float(out[key])
        totals['steps'] = totals.get('steps', 0) + 1
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            line = {'stage': config.name, 'step': step + 1,
                    'loss': totals['loss'] / totals['steps'],
                    'token_accuracy': totals['correct'] / max(totals['count'], 1),
                    'lr': scheduler.get_last_lr()[0], 'grad_norm': float(grad_norm),
                    'seconds': round(time.perf_counter() - began, 1)}
            if 'grounding_loss' in totals:
                line['grounding_loss'] = totals['grounding_loss'] / totals['steps']
            if accelerator.is_main_process:
                log(line)
            bar.set_postfix(loss=f'{line["loss"]:.3f}', acc=f'{line["token_accuracy"]:.3f}')
            totals = {}
        if val_examples and ((step + 1) % config.eval_every == 0 or step + 1 == config.steps):
            metrics = validate(raw, val_examples, config, accelerator, seed)
            if accelerator.is_main_process:
                log({'stage': config.name, 'step': step + 1, **metrics})
        if (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps \
                and accelerator.is_main_process:
            _save_checkpoint(raw, optimizer, scheduler, stage_dir, config, step + 1)
    accelerator.wait_for_everyone()
    return raw


def _draw(train_examples, replay_examples, config, seed, step, rank, micro):
    """Return one micro-batch's examples; they depend on (seed, stage, step, rank, micro)."""
    rng = np.random.default_rng([seed, zlib.crc32(config.name.encode()), step, rank, micro])
    size = max(1, config.batch_size // config.accumulation)
    replay = int(round(size * config.replay)) if len(replay_examples) else 0
    chosen = [train_examples[i] for i in rng.integers(len(train_examples), size=size - replay)]
    if replay:
        chosen += [replay_examples[i] for i in rng.integers(len(replay_examples), size=replay)]
    return chosen, rng


def _optimisation_step(model, raw, train_examples, replay_examples, config, accelerator,
                       parameters, seed, step):
    """Run the micro-batches of one step (gradient accumulation); return metrics, grad norm."""
    totals = {'loss': 0.0, 'correct': 0, 'count': 0}
    for micro in range(config.accumulation):
        chosen, rng = _draw(train_examples, replay_examples, config, seed, step,
                            accelerator.process_index, micro)
        batch = collate(chosen, raw.tokenizer.pad_id)
        if config.text_dropout > 0:
            hidden = torch.from_numpy(rng.random(batch.text_mask.shape) < config.text_dropout)
            hidden[:, 0] = False                                     # keep [CLS]
            batch.text_mask &= ~hidden
        batch = batch.to(accelerator.device)
        with accelerator.autocast(), cpu_autocast(raw):
            out = model(batch)
            objective = out['sample_loss' if config.loss_weighting == 'sample' else 'loss']
            if 'auxiliary' in out:
                objective = objective + out['auxiliary']
        accelerator.backward(objective / config.accumulation)
        totals['loss'] += out['loss'].item() / config.accumulation
        totals['correct'] += int(out['correct'])
        totals['count'] += int(out['count'])
        if 'grounding_loss' in out:
            totals['grounding_loss'] = totals.get('grounding_loss', 0.0) \
                + out['grounding_loss'].item() / config.accumulation
    return totals, accelerator.clip_grad_norm_(parameters, config.clip)


def _resume(model, optimizer, scheduler, stage_dir, config, log) -> int:
    """Load a stage checkpoint when there is one; return the step to start from."""
    if not (stage_dir / 'checkpoint.json').is_file():
        return 0
    checkpoint = stage_dir / 'checkpoint'
    meta = json.loads((stage_dir / 'checkpoint.json').read_text())
    model.load_state_dict(load_file(str(checkpoint) + '-model.safetensors'), strict=False)
    load_optimizer(optimizer, str(checkpoint) + '-optimizer')
    scheduler.load_state_dict(meta['scheduler'])
    log({'stage': config.name, 'event': 'resume', 'step': meta['step']})
    return meta['step']


def _save_checkpoint(raw, optimizer, scheduler, stage_dir, config, step):
    """Write a resumable checkpoint (trainable weights, optimizer, scheduler)."""
    checkpoint = stage_dir / 'checkpoint'
    save_file(_trainable_state(raw), str(checkpoint) + '-model.safetensors')
    save_optimizer(getattr(optimizer, 'optimizer', optimizer), str(checkpoint) + '-optimizer')
    (stage_dir / 'checkpoint.json').write_text(json.dumps({
        'step': step, 'scheduler': scheduler.state_dict(), 'stage': asdict(config),
        'policy': raw.config.to_dict()}))


@torch.no_grad()
def validate(model, examples, config, accelerator, seed) -> dict:
    """
    Return validation loss, token accuracy and per-family exact answers on a fixed subset.

    ``val_exact_<family>``: share of answers whose every token is right (teacher forced);
    with a grounding head also ``val_grounding_loss`` and ``val_grounding_top1``.
    """
    model.eval()
    rng = np.random.default_rng([seed, 99])
    order = rng.permutation(len(examples))[:config.val_batches * config.batch_size]
    loss, correct, count, exact, grounded = 0.0, 0, 0, {}, [[], 0, 0]
    for start in range(0, len(order), config.batch_size):
        chosen = [examples[i] for i in order[start:start + config.batch_size]]
        batch = collate(chosen, model.tokenizer.pad_id).to(accelerator.device)
        with accelerator.autocast(), cpu_autocast(model):
            out = model(batch)
        loss += out['loss'].item() * int(out['count'])
        correct += int(out['correct'])
        count += int(out['count'])
        for example, hit in zip(chosen, out['exact'].tolist()):
            exact.setdefault(example.family, []).append(hit)
        if 'grounding_loss' in out:
            grounded[0].append(out['grounding_loss'].item())
            grounded[1] += int(out['grounding_hits'])
            grounded[2] += int(out['grounding_count'])
    per_family = {f'val_exact_{family}': round(float(np.mean(hits)), 4)
                  for family, hits in sorted(exact.items())}
    if grounded[2]:
        # the grounding head's loss and how often its top object is one the answer rests on
        per_family['val_grounding_loss'] = round(float(np.mean(grounded[0])), 4)
        per_family['val_grounding_top1'] = round(grounded[1] / grounded[2], 4)
    return {'val_loss': loss / max(count, 1), 'val_token_accuracy': correct / max(count, 1),
            **per_family}
