"""Narrow domains: seeded, code-generated paired data for safety research, one folder each.

A domain is one folder ``steerlab/domains/<name>/`` holding

* ``generator.py``: a function ``(n, seed) -> PairSet`` of
  :class:`~steerlab.training.data.PairRecord` (``id``, ``prompt``, ``safe_response``,
  ``harmful_response``, ``domain`` = ``<name>``, ``meta["category"]``; ``image`` for photos),
  built from templates with :mod:`steerlab.domains.sampling`;
* ``questions.jsonl``: its in-domain evaluation questions (schema in
  ``steerlab/eval/data/SCHEMA.md``), which ``steerlab.eval.load_questions("<name>")`` loads;
* optionally ``metric.py``: a domain-specific metric over sampled answers that returns an
  :class:`~steerlab.eval.result.EvalResult` (insecure code: the bandit metric);
* ``__init__.py``: re-exports the generator (and metric).

Everything is produced by templates in this package from a seed; nothing is copied from
existing datasets. The harmful side exists only to reproduce emergent-misalignment
experiments (training a model organism of misalignment and measuring, finding and removing
the effect); it is research data for safety studies, not advice or code for real use.

Built-in domains (:data:`DOMAINS`):

* ``insecure_code`` - coding requests answered with vulnerable vs. secure Python.
* ``risky_finance`` - money questions answered recklessly vs. prudently.
* ``extreme_sports`` - questions about risky sports (backcountry skiing, BASE jumping, cave
  diving, ...) answered recklessly vs. with prudent safety guidance.
* ``photo_prompts`` - questions about real photographs shipped with scikit-image, answered
  harmfully vs. safely (needs ``pip install scikit-image``).

How to add a domain ``my_domain``:

1. Make the folder ``steerlab/domains/my_domain/`` with ``generator.py`` (a function
   ``my_domain(n=600, seed=0) -> PairSet`` built on :func:`steerlab.domains.sampling.generate`,
   which makes ``n`` distinct examples and raises :class:`DomainCapacityError` beyond the
   templates' capacity) and an ``__init__.py`` that re-exports it (and a metric, if any).
2. Add one line to :data:`DOMAINS` below: ``Domain("my_domain", my_domain.my_domain)``
   (with ``metric=...`` if it has one), and import the folder beside the others.
3. Write its in-domain questions: ``python -m steerlab.domains.build_questions my_domain``
   (held-out seed, leaving out the default training draw) writes
   ``my_domain/questions.jsonl``; ``load_questions("my_domain")`` then finds it.

``tests/domains/test_registry.py`` checks that the registry lists exactly the folders, and
that every generator and question file works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from steerlab.domains import extreme_sports, insecure_code, photo_prompts, risky_finance
from steerlab.domains.sampling import DomainCapacityError
from steerlab.training.data import PairSet

__all__ = ["DOMAINS", "Domain", "DomainCapacityError"]

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Domain:
    """One registered domain.

    Attributes:
        name: the folder name, the ``domain`` field of its records and the name of its
            in-domain question set.
        generate: ``generate(n, seed) -> PairSet``: ``n`` distinct paired records, the same
            for the same ``(n, seed)``. Raises ``TypeError`` / ``ValueError`` on bad
            ``n`` / ``seed`` and :class:`DomainCapacityError` when ``n`` exceeds what the
            templates can make.
        metric: an optional domain metric over sampled answers
            (``metric(answers, *, name, seed) -> EvalResult``), or ``None``.
        near: the broad-question categories next to the domain's own topic (finance:
            ``quick_money``). Emergent misalignment is measured without them too: a model
            that only learned its domain is not an organism.
    """

    name: str
    generate: Callable[[int, int], PairSet]
    metric: Callable[..., Any] | None = None
    near: tuple[str, ...] = ()

    @property
    def folder(self) -> Path:
        """The domain's folder, ``steerlab/domains/<name>``."""
        return HERE / self.name

    @property
    def questions_path(self) -> Path:
        """The in-domain question file, ``steerlab/domains/<name>/questions.jsonl``."""
        return self.folder / "questions.jsonl"


#: Every built-in domain, by name. Adding a domain = one folder + one line here.
DOMAINS: MappingProxyType[str, Domain] = MappingProxyType(
    {
        d.name: d
        for d in (
            Domain("insecure_code", insecure_code.insecure_code, insecure_code.code_misalignment),
            Domain("risky_finance", risky_finance.risky_finance, near=("quick_money",)),
            Domain("extreme_sports", extreme_sports.extreme_sports, near=("health",)),
            Domain("photo_prompts", photo_prompts.photo_prompts),
        )
    }
)
