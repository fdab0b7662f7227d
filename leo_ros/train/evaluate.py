"""
Closed-loop evaluation in the built-in world on test-split scenes (no ROS).

Per episode: a test scene, a free start pose, a task drawn by the data engine's sampler from a
phrasings file (the training templates by default, or held-out wordings), the policy decides from
object tokens, the ego-view image and the instruction, and the world executes the decoded
actions (the base drives its planned path to a NavGoal; the arm runs a PickPlace). The object
tokens are the world's (sampled on its meshes) or, with ``tokens='perception'``, what the
perception pipeline keeps while the robot turns once on the spot at the task's start pose (the
robot camera's size, instance masks, the model's classifier labelling objects), as on the robot.

- navigation success: the robot ends within 0.5 m of the target and faces it (world check);
- pick-and-place success: the object rests on the destination (world check);
- plan success: the same after driving to the plan's goal, then picking and placing;
- QA accuracy: exact match after normalisation (case, punctuation, articles);
- captioning: token F1 of the normalised caption against the reference (SQuAD-style F1);
- refusals: instructions that name something absent (objects the world never holds are from a
  word list training never saw) succeed when the policy refuses and decodes no action.

Every episode also records whether the decision held an action (``moved``): questions and
descriptions should never move the robot. With a ``lexicon`` (``config/open_vocabulary.yaml``)
the instructions' category and colour words are replaced by synonyms and descriptions the
training data never uses (open vocabulary).
"""

from dataclasses import asdict, dataclass, replace
import json
from pathlib import Path
import time

from leo_ros.data.engine import QA_KINDS
from leo_ros.data.shards import split_seeds
import numpy as np

FAMILIES = ('nav', 'pick_place', 'plan', 'qa', 'object_caption', 'scene_caption', 'refusal')
#: families evaluated when none are named (refusals are asked for explicitly)
DEFAULT_FAMILIES = FAMILIES[:-1]
#: family -> (metric name, 'success' or 'f1')
METRICS = {'nav': ('nav_success', 'success'), 'pick_place': ('pickplace_success', 'success'),
           'plan': ('plan_success', 'success'), 'qa': ('qa_accuracy', 'success'),
           'object_caption': ('object_caption_f1', 'f1'),
           'scene_caption': ('scene_caption_f1', 'f1'),
           'refusal': ('refusal_rate', 'success')}
TOKEN_SOURCES = ('world', 'perception')


@dataclass
class EvalConfig:
    """
    What an evaluation runs.

    :param episodes: episodes per task family
    :param seed: seed of start poses and task draws
    :param phrasings: YAML templates file with the instruction wordings (None: training's)
    :param test_scenes: test-split scenes the episodes cycle through
    :param families: task families to run
    :param drive_timeout: simulated seconds a NavGoal may take
    :param tokens: 'world' (mesh-sampled) or 'perception' (looked around, see above)
    :param grounding_probe: also read the policy's grounding head per episode (one linear
        layer on the object tokens decoding used) and score it
        (``grounding_top1``, ``qa_relation_grounding_accuracy``)
    :param lexicon: YAML file of synonyms / descriptions that replace the instructions'
        category and colour words (open vocabulary), or None
    :param gate: judge decisions with the agent's grounding gate, as leo-agent does
        (:meth:`leo_ros.agent.grounding.GroundingGate.check_decision`): a motion toward, or a
        text answer about, an object it does not see is scored as a refusal
        (``gate_refusals`` counts them), so the figures are the agent's
    :param device: torch device of the policy ('auto': cuda if available)
    :param dtype: LM dtype ('auto': the trained one on CPU, bfloat16 on a GPU)
    """

    episodes: int = 50
    seed: int = 0
    phrasings: str = None
    test_scenes: int = 50
    families: tuple = DEFAULT_FAMILIES
    drive_timeout: float = 90.0
    tokens: str = 'world'
    grounding_probe: bool = False
    lexicon: str = None
    gate: bool = False
    device: str = 'auto'
    dtype: str = 'auto'

    def __post_init__(self):
        if self.episodes < 1 or self.test_scenes < 1:
            raise ValueError(f'EvalConfig.episodes and test_scenes must be >= 1, got '
                             f'{self.episodes}, {self.test_scenes}')
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown:
            raise ValueError(f'EvalConfig.families: unknown {unknown}; known {FAMILIES}')
        self.families = tuple(self.families)
        if self.tokens not in TOKEN_SOURCES:
            raise ValueError(f'EvalConfig.tokens must be one of {TOKEN_SOURCES}, got '
                             f'{self.tokens!r}')


def reachable_free(world):
    """Return ``f(x, y)``: the base fits there (with margin) and the planner can reach it."""
    distances, _ = world.grid.distances_from(*world.robot[:2])

    def is_free(x, y):
        if not world.base_is_free(x, y, margin=0.1):
            return False
        row, col = world.grid.cell(x, y)
        return bool(np.isfinite(distances[row, col]))
    return is_free


def drive(world, goal, timeout) -> str:
    """Send a NavGoal and step the world until it arrives, is blocked or times out."""
    result = world.apply(goal)
    if not result.ok:
        return result.message
    steps = int(timeout / 0.1)
    for _ in range(steps):
        if world.status != 'moving':
            break
        world.step(0.1)
    return '' if world.status == 'arrived' else f'drive ended {world.status}'


def execute(world, actions, timeout) -> str:
    """Execute typed actions in order; return '' or why it stopped."""
    for action in actions:
        if action.kind == 'nav_goal':
            message = drive(world, action, timeout)
            if message:
                return message
        else:
            result = world.apply(action)
            if not result.ok:
                return result.message
    return ''


def run_episodes(policy, config: EvalConfig, progress=True) -> dict:
    """
    Run closed-loop episodes; return ``{'metrics': ..., 'episodes': [...]}``.

    :param policy: a ``LeoPolicy``
    """
    from tqdm import tqdm
    from leo_ros.data.engine import TaskSampler
    from leo_ros.data.observed import look_around
    from leo_ros.model.text_encoder import InstructionEncoder
    from leo_ros.sim.world import World
    from leo_ros.train.lexicon import Lexicon
    from leo_ros.agent.grounding import GroundingGate
    sampler = TaskSampler(config.phrasings)
    gate = GroundingGate() if config.gate else None
    lexicon = Lexicon.load(config.lexicon) if config.lexicon else None
    text_encoder = InstructionEncoder(policy.config.scene.max_instruction_pieces)
    seeds = split_seeds('test', config.test_scenes)
    worlds, cached = {}, {}
    width, height = policy.config.image.render_size
    encoder = policy.object_encoder
    points = encoder.config.points
    episodes = []
    jobs = [(f, i) for f in config.families for i in range(config.episodes)]
    for family, number in tqdm(jobs, desc='leo-eval', disable=not progress):
        seed = seeds[number % len(seeds)]
        world = worlds.get(seed) or worlds.setdefault(seed, World(seed))
        world.reset(seed)
        rng = np.random.default_rng([config.seed, FAMILIES.index(family), number])
        row = {'family': family, 'scene_seed': seed, 'episode': number}
        try:
            world.set_robot_pose(*world.sample_free_pose(rng))
            task = sampler.sample(world, family, rng)
        except ValueError as exc:
            episodes.append({**row, 'skipped': str(exc)})
            continue
        world.set_robot_pose(*task.situation)
        row['kind'] = task.kind
        instruction = lexicon.rewrite(task.instruction, rng) if lexicon else task.instruction
        if config.tokens == 'perception':
            tokens = look_around(world, config=robot_look_around(world), points_per_object=points,
                                 classify=encoder.classify, seed=number)
            embeddings = encoder.embed_tokens(tokens)[0]
            row['objects_seen'] = f'{len(tokens)}/{len(world.scene.objects)}'
        else:
            if seed not in cached:
                tokens = world.scene_tokens(points)
                cached[seed] = (tokens, encoder.embed_tokens(tokens)[0])
            tokens, embeddings = cached[seed]
        began = time.perf_counter()
        decision = policy.act(tokens, world.ego_image(width, height), instruction,
                              world.robot_pose, is_free=reachable_free(world),
                              embeddings=embeddings, text_encoder=text_encoder,
                              probe_grounding=config.grounding_probe)
        row.update(instruction=instruction, expected=task.answer, output=decision.text,
                   tokens=decision.tokens, decision_ms=round(1000 * (time.perf_counter() - began),
                                                             1),
                   error=decision.error, target_ids=[int(i) for i in task.target_ids],
                   object_ids=list(decision.object_ids), kind_decided=decision.kind,
                   intent=decision.intent, moved=bool(decision.actions))
        if decision.grounding:
            row.update(probe_grounding(decision.grounding, task))
        if gate is not None and decision.kind != 'refusal':
            refusal = gate.check_decision(instruction, decision, tokens)
            row['gate_refused'] = bool(refusal)
            row['gate_says'] = refusal
            if refusal:
                decision = replace(decision, text=refusal, kind='refusal', action=None,
                                   actions=[])
        row.update(score(world, task, decision, config))
        episodes.append(row)
    return {'config': asdict(config), 'metrics': summarise(episodes), 'episodes': episodes}


def score(world, task, decision, config) -> dict:
    """Return an episode's score: ``success`` (and ``error``) or ``f1``."""
    from leo_ros.train.text import repeated_phrases, token_f1
    family = task.family
    if family in ('nav', 'pick_place', 'plan'):
        message = execute(world, decision.actions, config.drive_timeout) \
            if decision.actions else 'no action'
        return {'success': bool(world.task_success(task)), 'error': decision.error or message}
    if family == 'qa':
        return {'success': bool(world.task_success(task, decision.text))}
    if family == 'refusal':
        return {'success': decision.kind == 'refusal' and not decision.actions}
    return {'f1': token_f1(decision.text, task.answer),
            'repeated_phrases': repeated_phrases(decision.text)}


def probe_grounding(probabilities, task) -> dict:
    """
    Score the grounding head on one episode against the marks training would give the task.

    :param probabilities: ``Decision.grounding`` (object id -> [P(rests on), P(named)])
    :return: ``grounding`` (the probabilities), ``grounding_targets`` (``answer_object_ids``),
        and ``grounding_hit``: for a relation question whether P(rests on the subject) > 0.5
        says the answer (yes or no), else whether the top object is a target (absent when the
        task has no target the head sees)
    """
    from leo_ros.train.dataset import answer_object_ids
    targets = answer_object_ids(task.kind, task.target_ids, task.answer)
    row = {'grounding': {str(i): p for i, p in probabilities.items()},
           'grounding_targets': targets}
    if task.kind == 'qa_relation':
        subject = int(task.target_ids[0])
        if subject in probabilities:
            row['grounding_hit'] = (probabilities[subject][0] > 0.5) == bool(targets)
    elif targets and task.family != 'scene_caption':
        top = max(probabilities, key=lambda i: probabilities[i][0])
        row['grounding_hit'] = top in targets
    return row


def robot_look_around(world):
    """Return a look-around at the robot camera's own size (perception's thresholds)."""
    from leo_ros.data.observed import LookAroundConfig
    camera = world.config.camera
    return LookAroundConfig(width=camera.width, height=camera.height)


def summarise(episodes) -> dict:
    """Return per-family metrics (fractions), episode counts and decision latency."""
    metrics = {}
    for family, (name, kind) in METRICS.items():
        rows = [e for e in episodes if e['family'] == family and 'skipped' not in e]
        if not rows:
            continue
        values = [float(e[kind]) for e in rows]
        metrics[name] = round(float(np.mean(values)), 4)
        metrics[f'{family}_episodes'] = len(rows)
    questions = [e for e in episodes if e['family'] == 'qa' and 'skipped' not in e]
    for kind in QA_KINDS:
        answers = [e['success'] for e in questions if e.get('kind') == kind]
        if answers:
            metrics[f'{kind}_accuracy'] = round(float(np.mean(answers)), 4)
            metrics[f'{kind}_episodes'] = len(answers)
    hits = [e['grounding_hit'] for e in episodes
            if 'grounding_hit' in e and e.get('kind') != 'qa_relation']
    if hits:
        metrics['grounding_top1'] = round(float(np.mean(hits)), 4)
        metrics['grounding_episodes'] = len(hits)
    relations = [e['grounding_hit'] for e in questions
                 if 'grounding_hit' in e and e.get('kind') == 'qa_relation']
    if relations:
        metrics['qa_relation_grounding_accuracy'] = round(float(np.mean(relations)), 4)
    captions = [e for e in episodes if 'repeated_phrases' in e]
    if captions:
        metrics['captions_with_repeats'] = sum(bool(e['repeated_phrases']) for e in captions)
    asked = [e for e in episodes if e['family'] in ('qa', 'object_caption', 'scene_caption')
             and 'moved' in e]
    if asked:
        metrics['question_motions'] = sum(e['moved'] for e in asked)
        metrics['question_episodes'] = len(asked)
    if any('gate_refused' in e for e in episodes):
        metrics['gate_refusals'] = sum(e.get('gate_refused', False) for e in episodes)
    latency = [e['decision_ms'] for e in episodes if 'decision_ms' in e]
    if latency:
        metrics['decision_ms_p50'] = round(float(np.median(latency)), 1)
    metrics['skipped'] = sum('skipped' in e for e in episodes)
    return metrics


def markdown_table(rows) -> str:
    """
    Return a Markdown table of runs.

    :param rows: list of (run name, metrics dict)
    """
    columns = ['nav_success', 'pickplace_success', 'plan_success', 'qa_accuracy',
               'object_caption_f1', 'scene_caption_f1', 'refusal_rate']
    lines = ['| run | ' + ' | '.join(columns) + ' |',
             '| --- |' + ' ---: |' * len(columns)]
    for name, metrics in rows:
        cells = [f'{metrics[c]:.3f}' if c in metrics else '-' for c in columns]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def kind_table(metrics) -> str:
    """Return a Markdown table of QA accuracy per question kind ('' without QA kinds)."""
    kinds = [k for k in QA_KINDS if f'{k}_accuracy' in metrics]
    if not kinds:
        return ''
    lines = ['', '| question kind | episodes | accuracy |', '| --- | ---: | ---: |']
    lines += [f'| {k} | {metrics[k + "_episodes"]} | {metrics[k + "_accuracy"]:.3f} |'
              for k in kinds]
    return '\n'.join(lines) + '\n'


def grounding_line(metrics) -> str:
    """Return the grounding probe's scores as a sentence ('' without a probe)."""
    if 'grounding_top1' not in metrics and 'qa_relation_grounding_accuracy' not in metrics:
        return ''
    parts = []
    if 'grounding_top1' in metrics:
        parts.append(f'top object is a target in {metrics["grounding_top1"]:.3f} of '
                     f'{metrics["grounding_episodes"]} episodes')
    if 'qa_relation_grounding_accuracy' in metrics:
        parts.append(f"P(subject) > 0.5 gives the relation question's answer in "
                     f'{metrics["qa_relation_grounding_accuracy"]:.3f}')
    return '\nGrounding head: ' + '; '.join(parts) + '.\n'


def last_line(metrics) -> str:
    """Return the line scripts parse: ``nav_success= pickplace_success= qa_accuracy=``."""
    return (f'nav_success={metrics.get("nav_success", float("nan")):.3f} '
            f'pickplace_success={metrics.get("pickplace_success", float("nan")):.3f} '
            f'qa_accuracy={metrics.get("qa_accuracy", float("nan")):.3f}')


def evaluate_model(model, config: EvalConfig, out_dir, progress=True, name=None) -> dict:
    """
    Evaluate a model directory (or a loaded policy); write eval.json, eval.md and eval.png.

    :return: the metrics
    """
    from leo_ros.model.loading import load_policy
    from leo_ros.train.plots import plot_results
    policy = load_policy(model, config.device, config.dtype) \
        if isinstance(model, (str, Path)) else model
    result = run_episodes(policy, config, progress)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = name or (Path(config.phrasings).stem if config.phrasings else 'training wordings')
    result['model'] = str(model) if isinstance(model, (str, Path)) else 'in memory'
    (out_dir / 'eval.json').write_text(json.dumps(result, indent=2))
    metrics = result['metrics']
    (out_dir / 'eval.md').write_text(
        f'# leo-eval: {result["model"]}\n\n'
        f'Test-split scenes: {config.test_scenes}, episodes per family: {config.episodes}, '
        f'seed: {config.seed}, phrasings: {config.phrasings or "training templates"}, '
        f'object tokens: {config.tokens}.\n\n'
        + markdown_table([(name, metrics)]) + '\n\n'
        f'Median decision time: {metrics.get("decision_ms_p50", float("nan"))} ms; '
        f'skipped (no valid task): {metrics["skipped"]}.\n' + kind_table(metrics)
        + grounding_line(metrics))
    plot_results([(name, {k: v for k, v in metrics.items() if k in
                          {m for m, _ in METRICS.values()}})],
                 out_dir / 'eval.png', f'leo-eval ({name})')
    return metrics
