"""leo-train and leo-eval end to end at toy size: outputs, formats, resume, backbones, tables."""

import json
from pathlib import Path
import subprocess
import sys

from leo_ros.model.checkpoint import FORMAT, load_policy_dir
from leo_ros.model.policy import LeoPolicy
from leo_ros.ros.env import child_environment
from leo_ros.tools import evaluate as eval_tool
from leo_ros.tools import train as train_tool
from leo_ros.train.plots import read_metrics
from policy_helpers import act, make_scene, save_lm
import pytest

TOY = ['--set', 'data.train_scenes=3', '--set', 'data.val_scenes=1',
       '--set', 'data.test_scenes=1',
       '--set', 'data.per_scene={situations: 2, object_captions: 3, scene_captions: 1, qa: 4, '
                'nav: 2, pick_place: 3, plan: 1, refusals: 2}',
       '--set', 'data.observed_situations=1', '--set', 'data.observed_views=4',
       '--set', 'classifier.steps=3', '--set', 'classifier.batch_size=16',
       '--set', 'policy.scene.width=32', '--set', 'policy.llm.hidden_size=32',
       '--set', 'policy.llm.layers=1', '--set', 'policy.llm.heads=2',
       '--set', 'policy.llm.intermediate_size=64', '--set', 'policy.llm.bpe_vocab_size=400',
       '--set', 'stage1.batch_size=4', '--set', 'stage2.batch_size=4',
       '--set', 'stage1.steps=2', '--set', 'stage2.steps=3',
       '--set', 'stage1.checkpoint_every=1', '--set', 'stage2.checkpoint_every=1',
       '--set', 'stage1.eval_every=2', '--set', 'stage2.eval_every=3',
       '--set', 'stage1.val_batches=1', '--set', 'stage2.val_batches=1', '--quiet']


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp('train')
    assert train_tool.main(['--out', str(out)] + TOY) == 0
    return out


def test_outputs_and_formats(trained):
    model = trained / 'model'
    meta = json.loads((model / 'config.json').read_text())
    assert meta['format'] == FORMAT and meta['backbone'] == {'source': 'tiny'}
    assert meta['training']['stage2']['llm'] == 'lora' and meta['policy']['lora']
    scene = meta['policy']['scene']
    assert scene['width'] == 32 and meta['policy']['llm']['hidden_size'] == 32   # --set
    assert scene['pair_values']            # config/train_default.yaml turns them on
    assert scene['grounding_loss'] > 0     # ... and the grounding loss
    assert scene['named_geometry'] and scene['subject_head']   # ... and the named geometry
    assert scene['object_embedding'] == meta['training']['classifier']['embedding']
    for name in ('policy.safetensors', 'tokenizer/tokenizer.json', 'adapter/adapter_config.json',
                 'adapter/adapter_model.safetensors', 'classifier.safetensors', 'grounded.json'):
        assert (model / name).is_file(), name
    assert not list(trained.rglob('*.pt')) and not list(trained.rglob('*.bin'))  # no pickles
    lines = read_metrics(trained / 'metrics.jsonl')
    for stage in ('stage1', 'stage2'):
        steps = [m['step'] for m in lines if m.get('stage') == stage and 'loss' in m]
        assert steps and max(steps) == {'stage1': 2, 'stage2': 3}[stage]
        assert any('val_loss' in m for m in lines if m.get('stage') == stage)
        # the grounding head is trained in both stages
        assert any('grounding_loss' in m for m in lines if m.get('stage') == stage)
    # the tiny LM trains fully in stage 1 ('auto'), LoRA adapters only in stage 2
    trainable = {m['stage']: m['trainable'] for m in lines if 'trainable' in m}
    assert trainable['stage1'] > trainable['stage2'] > 0
    assert (trained / 'curves.png').stat().st_size > 1000
    # Observed tokens were written for every train and val scene, and the classifier was
    # scored on them too.
    observed = [m for m in lines if 'observed_scenes' in m]
    assert [m['observed_scenes'] for m in observed] == [3, 1]
    assert any('val_accuracy_with_observed' in m for m in lines)
    # config/train_default.yaml rewords half the stage-2 instructions into extra examples
    examples = [m for m in lines if m.get('stage') == 'examples'][0]
    assert examples['reworded_copies'] > 0 and examples['stage2_train'] > 0
    data = [m for m in lines if m.get('stage') == 'data' and m.get('split') == 'train'][0]
    assert data['families'].get('refusal', 0) > 0
    policy = load_policy_dir(model)
    assert isinstance(policy, LeoPolicy) and policy.config.lora
    decision = act(policy, make_scene(3), require_action=['nav_goal'])
    assert decision.kind == 'nav_goal' and decision.error == ''


def test_install_replaces_the_model_and_keeps_the_ablation_table(trained, tmp_path):
    target = tmp_path / 'installed'
    (target / 'ablation').mkdir(parents=True)
    (target / 'ablation' / 'ablation.md').write_text('| variant |')
    (target / 'stale.txt').write_text('from an older model')
    train_tool.install(trained, trained / 'model', target)
    assert (target / 'ablation' / 'ablation.md').read_text() == '| variant |'
    assert not (target / 'stale.txt').exists()
    assert isinstance(load_policy_dir(target), LeoPolicy)
    assert (target / 'metrics.jsonl').is_file() and (target / 'README.md').is_file()
    assert 'tiny LLaMA 1 layers x 32' in (target / 'README.md').read_text()


def test_resume_continues_from_the_checkpoint(trained):
    # Remove the finished marker of stage 2: the stage must resume from its checkpoint
    # (saved after step 2 of 3) instead of starting over.
    (trained / 'stage2' / 'final.safetensors').unlink()
    assert train_tool.main(['--out', str(trained)] + TOY) == 0
    lines = read_metrics(trained / 'metrics.jsonl')
    assert {'stage': 'stage1', 'event': 'loaded finished stage'}.items() <= \
        [m for m in lines if m.get('event') == 'loaded finished stage'][-1].items()
    resumed = [m for m in lines if m.get('stage') == 'stage2' and m.get('event') == 'resume']
    assert resumed and resumed[-1]['step'] == 2
    assert isinstance(load_policy_dir(trained / 'model'), LeoPolicy)


def test_a_local_hugging_face_backbone_trains_through_leo_train(trained, tmp_path):
    lm = save_lm(tmp_path / 'lm')
    out = tmp_path / 'run'
    assert train_tool.main(['--out', str(out), '--data', str(trained / 'data'), '--llm', str(lm),
                            '--dtype', 'bfloat16', '--init-from', str(trained / 'model')]
                           + TOY) == 0
    meta = json.loads((out / 'model' / 'config.json').read_text())
    assert meta['backbone']['source'] == str(lm.resolve())
    assert meta['policy']['llm']['dtype'] == 'bfloat16'
    lines = read_metrics(out / 'metrics.jsonl')
    assert [m for m in lines if m.get('event') == 'init'][0]['copied'] > 0
    # a pretrained LM trains LoRA adapters in both stages: the same count each
    trainable = {m['stage']: m['trainable'] for m in lines if 'trainable' in m}
    assert trainable['stage1'] == trainable['stage2'] > 0
    policy = load_policy_dir(out / 'model')
    assert policy.in_use() == {'device': 'cpu', 'dtype': 'bfloat16'}
    assert act(policy, make_scene(3), require_action=['nav_goal']).kind == 'nav_goal'


def test_init_from_reads_a_work_directory_mid_stage(trained, tmp_path):
    from safetensors.torch import load_file, save_file
    from leo_ros.train.pipeline import encoder_directory, latest_weights
    # a run stopped in stage 2: stage 1's final weights under stage 2's latest checkpoint
    run = tmp_path / 'run'
    for stage in ('stage1', 'stage2'):
        (run / stage).mkdir(parents=True)
    stage1 = load_file(str(trained / 'stage1' / 'final.safetensors'))
    save_file(stage1, str(run / 'stage1' / 'final.safetensors'))
    name = next(k for k in stage1 if not k.startswith('llm.'))
    changed = {name: stage1[name] + 1.0}
    save_file(changed, str(run / 'stage2' / 'checkpoint-model.safetensors'))
    state, source = latest_weights(run)
    assert 'checkpoint-model' in source and state.keys() == stage1.keys()
    assert (state[name] == changed[name]).all()
    # a finished run reads its model; a directory with neither is refused by name
    assert latest_weights(trained)[1] == str(trained / 'model')
    with pytest.raises(FileNotFoundError, match='empty'):
        latest_weights(tmp_path / 'empty')
    # the object encoder: a policy directory's own, a work directory's classifier/
    assert encoder_directory(trained / 'model') == trained / 'model'
    assert encoder_directory(trained) == trained / 'classifier'
    with pytest.raises(FileNotFoundError, match='no object encoder'):
        encoder_directory(run)


def test_the_installed_launcher_renders_observed_tokens_in_worker_processes(tmp_path):
    # The console script itself, not main(): look-arounds run in spawned worker processes,
    # which import the launcher again (an unguarded launcher would start a second training).
    launcher = Path(sys.prefix) / 'bin' / 'leo-train'
    args = TOY + ['--set', 'stage1.steps=1', '--set', 'stage2.steps=1']
    done = subprocess.run([str(launcher), '--out', str(tmp_path)] + args, capture_output=True,
                          text=True, timeout=300, env=child_environment())
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list((tmp_path / 'data' / 'train' / 'scenes').glob('*-observed.npz'))) == 3
    assert 'freeze_support' not in done.stderr


@pytest.mark.parametrize('override, match', [('stage1.steps=0', 'steps'),
                                             ('policy.width=32', 'no fields'),
                                             ('policy.scene.heads=5', 'heads')])
def test_bad_override_is_refused(tmp_path, capsys, override, match):
    assert train_tool.main(['--out', str(tmp_path), '--set', override]) == 2
    assert match in capsys.readouterr().err


def test_leo_eval_writes_tables_and_the_last_line(trained, tmp_path, capsys):
    out = tmp_path / 'eval'
    code = eval_tool.main(['--model', str(trained / 'model'), '--episodes', '1',
                           '--test-scenes', '1', '--out', str(out), '--quiet',
                           '--families', 'nav', 'qa', 'pick_place', '--tokens', 'perception',
                           '--grounding-probe', '--device', 'cpu'])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    keys = [part.split('=')[0] for part in last.split()]
    assert keys == ['nav_success', 'pickplace_success', 'qa_accuracy']
    for part in last.split():
        assert 0.0 <= float(part.split('=')[1]) <= 1.0
    result = json.loads((out / 'eval.json').read_text())
    assert {e['family'] for e in result['episodes']} == {'nav', 'qa', 'pick_place'}
    # Perception's look-around saw part of the scene: 'seen/all' objects per episode.
    assert result['config']['tokens'] == 'perception'
    assert all(int(e['objects_seen'].split('/')[0]) >= 1 for e in result['episodes'])
    assert (out / 'eval.md').read_text().count('|') > 10
    assert (out / 'eval.png').is_file()
    # QA episodes say which kind of question they asked; the table breaks accuracy down by it.
    question = next(e for e in result['episodes'] if e['family'] == 'qa')
    assert question['kind'].startswith('qa_')
    assert result['metrics'][question['kind'] + '_episodes'] == 1
    assert f'| {question["kind"]} | 1 |' in (out / 'eval.md').read_text()
    # The grounding probe: the head's two probabilities for every object the policy read.
    assert result['config']['grounding_probe'] is True
    for episode in result['episodes']:
        assert len(episode['grounding']) == int(episode['objects_seen'].split('/')[0])
        assert all(0 <= p <= 1 for pair in episode['grounding'].values() for p in pair)
        assert episode['intent'] in ('motion', 'question', 'description')
    navigation = next(e for e in result['episodes'] if e['family'] == 'nav')
    assert navigation['grounding_targets'] == navigation['target_ids']


def test_an_ablation_variant_is_trained_once_and_read_back(trained, tmp_path, capsys):
    out = tmp_path / 'ablation'
    shared = ['--out', str(out), '--data', str(trained / 'data'), '--classifier',
              str(trained / 'classifier'), '--eval-episodes', '1'] + TOY
    assert train_tool.main(shared + ['--ablations', 'no_pairwise']) == 0
    table = (out / 'ablation.md').read_text()
    assert '| no_pairwise |' in table
    result = json.loads((out / 'ablation.json').read_text())
    assert set(result['variants']) == {'no_pairwise'}
    layer = load_policy_dir(out / 'no_pairwise' / 'model').scene.scene_layers[0]
    assert layer.pair is None and layer.pair_value is None
    assert (out / 'ablation.png').is_file()
    # A finished variant is read back (separate processes, one gathering call)
    stamp = (out / 'no_pairwise' / 'eval' / 'eval.json').stat().st_mtime_ns
    assert train_tool.main(shared + ['--ablations', 'no_pairwise']) == 0
    assert (out / 'no_pairwise' / 'eval' / 'eval.json').stat().st_mtime_ns == stamp
    capsys.readouterr()


def test_leo_eval_refuses_a_missing_or_old_model(tmp_path, capsys):
    assert eval_tool.main(['--model', str(tmp_path / 'none'), '--quiet']) == 2
    assert 'no model' in capsys.readouterr().err
    (tmp_path / 'config.json').write_text(json.dumps({'format': 'leo_ros.train.policy/1'}))
    assert eval_tool.main(['--model', str(tmp_path), '--quiet', '--device', 'cpu']) == 2
    error = capsys.readouterr().err.strip()
    assert '\n' not in error and 'leo_ros.train.policy/1' in error


def test_held_out_wordings_are_not_trained_on():
    from leo_ros.data.templates import Templates
    root = Path(__file__).resolve().parents[1]
    held_out = Templates.load(root / 'config' / 'phrasings_heldout.yaml')
    for training in (Templates.load(), Templates.load(root / 'config' / 'templates_train.yaml')):
        for kind, entry in held_out.kinds.items():
            seen = {p.lower().rstrip('.?') for p in training.kinds[kind]['instructions']}
            for phrasing in entry['instructions']:
                assert phrasing.lower().rstrip('.?') not in seen, phrasing
