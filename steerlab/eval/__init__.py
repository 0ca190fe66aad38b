"""Measuring emergent misalignment, text-only and multimodal.

- Question sets: :func:`load_questions` (``"broad"``, ``"broad-multimodal"``, one per
  narrow domain of :mod:`steerlab.domains`, or a user JSONL file) -> :class:`QuestionSet`
  of :class:`Question`.
- Sampling: :func:`sample_answers` with a :class:`SamplingConfig` (resumable answers file).
- Judge-free metrics: :func:`preference_misalignment` (length-normalised log-likelihood of
  the misaligned vs the aligned reference answer); a domain's own metric lives in its folder
  (the bandit code metric: :func:`steerlab.domains.insecure_code.code_misalignment`).
- Judges: :mod:`steerlab.eval.judges` (rubric, alignment + coherence; HTTP and local
  backends), all implementing :class:`Judge` and returning :class:`Verdict`.
- :class:`ProbeJudge`: an activation-probe judge (no LLM), with :func:`probe_auroc`.
- Driver: :func:`evaluate` (sample, judge with a cache, aggregate, save).
- Sweeps (:mod:`.sweeps`): :func:`ablation_curve` (top-k directional ablation with a
  random-subspace control) and :func:`steering_sweep`, a metric under interventions.
- Results: :class:`EvalResult` of :class:`ScoredItem` (mean ± std over seeds, bootstrap
  95% CI, per category, unparsed counted), :func:`compare` for text-only vs multimodal side by side.
"""

from steerlab.eval import judges
from steerlab.eval.preference import preference_misalignment, reference_loglik
from steerlab.eval.probe import ProbeJudge, probe_auroc
from steerlab.eval.questions import BUILTIN_SETS, Question, QuestionSet, load_questions
from steerlab.eval.result import EvalResult, ScoredItem, compare, misaligned_rate, worst_of_n
from steerlab.eval.run import evaluate, judge_answers
from steerlab.eval.sampling import Answer, SamplingConfig, read_answers, sample_answers
from steerlab.eval.sweeps import (
    AblationRow,
    SteeringRow,
    ablation_curve,
    random_subspace,
    save_table,
    steering_sweep,
)
from steerlab.eval.types import Judge, JudgeItem, Verdict

__all__ = [
    "BUILTIN_SETS",
    "AblationRow",
    "Answer",
    "EvalResult",
    "Judge",
    "JudgeItem",
    "ProbeJudge",
    "Question",
    "QuestionSet",
    "SamplingConfig",
    "ScoredItem",
    "SteeringRow",
    "Verdict",
    "ablation_curve",
    "compare",
    "evaluate",
    "judge_answers",
    "judges",
    "load_questions",
    "misaligned_rate",
    "preference_misalignment",
    "probe_auroc",
    "random_subspace",
    "read_answers",
    "reference_loglik",
    "sample_answers",
    "save_table",
    "steering_sweep",
    "worst_of_n",
]
