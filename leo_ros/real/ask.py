"""
Ask the policy about a single scan (the Python API behind ``leo-ask``; no ROS).

  from leo_ros.real.ask import ScanAgent
  agent = ScanAgent()                       # the shipped default model
  answer = agent.ask('scan.pcd', 'how many objects are on the table?')
  print(answer.text, answer.decision.kind, len(answer.perceived.tokens))

Perception runs as on the robot (geometric segmentation, the default model's object
classifier for labels); the camera pose is estimated from the scan unless given
(:mod:`leo_ros.real.scan`).
"""

from dataclasses import dataclass, field
from pathlib import Path

from leo_ros.real.scan import load_scan, perceive, Scan, ScanPoseConfig


@dataclass
class ScanAnswer:
    """The policy's decision about one scan."""

    question: str
    text: str                       # the answer, or the error when there is none
    decision: object                # the policy's Decision
    perceived: object               # leo_ros.real.scan.PerceivedScan
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return True when the policy answered (no error)."""
        return not getattr(self.decision, 'error', '')


def load_classifier(model_path=None):
    """Return the model directory's object classifier ``classify``, or (None, why)."""
    from leo_ros.model.loading import default_model_path
    directory = Path(model_path) if model_path else default_model_path()
    try:
        from leo_ros.model.object_encoder import ObjectEncoder
        return ObjectEncoder.load(directory).classify, ''
    except Exception as error:  # no labels is better than no answer (as perception_node)
        return None, f'object labels off: {type(error).__name__}: {error}'


class ScanAgent:
    """
    A policy (loaded once) that answers questions about scans.

    :param model_path: policy directory (default: the shipped default model)
    :param device: 'auto', 'cpu', 'cuda', ...
    :param dtype: 'auto', 'float32', ...
    :param policy: an already loaded policy (then ``model_path`` only names the classifier)
    :param pose_config: :class:`~leo_ros.real.scan.ScanPoseConfig`
    :param classify: ``classify(tokens) -> (labels, confidences)`` (default: the model's)
    """

    def __init__(self, model_path=None, device=None, dtype=None, policy=None,
                 pose_config=None, classify=None):
        self.model_path, self.device, self.dtype = model_path, device, dtype
        self._policy = policy           # loaded on the first question when not given
        self.pose_config = pose_config or ScanPoseConfig()
        self.notes = []
        if classify is None:
            classify, why = load_classifier(model_path)
            if why:
                self.notes.append(why)
        self.classify = classify

    @property
    def policy(self):
        """Return the policy, loading it the first time (ValueError/OSError when it cannot)."""
        if self._policy is None:
            from leo_ros.model.loading import load_policy
            self._policy = load_policy(self.model_path, device=self.device, dtype=self.dtype)
        return self._policy

    def perceive(self, scan, camera_to_map=None, instances=None):
        """Return the :class:`~leo_ros.real.scan.PerceivedScan` of a file or :class:`Scan`."""
        scan = scan if isinstance(scan, Scan) else load_scan(scan)
        return perceive(scan, camera_to_map, classify=self.classify,
                        pose_config=self.pose_config, instances=instances)

    def ask(self, scan, question: str, camera_to_map=None, perceived=None) -> ScanAnswer:
        """
        Answer one question about a scan.

        :param scan: a PCD path or a :class:`~leo_ros.real.scan.Scan`
        :param camera_to_map: (4, 4) camera optical frame in the map, or None to estimate
        :param perceived: reuse an earlier :meth:`perceive` result (several questions)
        :raise leo_ros.real.scan.ScanError: unreadable scan, or no pose and no plane
        """
        perceived = perceived or self.perceive(scan, camera_to_map)
        decision = self.policy.act(perceived.tokens, perceived.scan.image(), question,
                                   agent_pose=perceived.agent_pose)
        error = getattr(decision, 'error', '')
        text = decision.text if not error else f'error: {error}'
        notes = list(self.notes) + list(perceived.scan.notes)
        return ScanAnswer(question=question, text=text or '', decision=decision,
                          perceived=perceived, notes=notes)


def ask(scan, question, model_path=None, pose=None, device=None, dtype=None) -> ScanAnswer:
    """
    Answer one question about one scan with a freshly loaded policy.

    :param scan: a PCD path
    :param pose: (4, 4) camera pose, or ``'x,y,z,qx,qy,qz,qw'`` text, or None to estimate
    """
    if isinstance(pose, str):
        from leo_ros.real.scan import pose_from_text
        pose = pose_from_text(pose)
    return ScanAgent(model_path, device=device, dtype=dtype).ask(scan, question, pose)
