"""Built-in narrow domains: seeded, code-generated paired data for safety research.

Each generator returns a :class:`~steerlab.training.data.PairSet` of
:class:`~steerlab.training.data.PairRecord` (``id``, ``prompt``, ``safe_response``,
``harmful_response``, ``domain``, ``meta["category"]``; ``image`` for photos). Everything is
produced by templates in this package from a seed; nothing is copied from existing datasets.
The harmful side exists only to reproduce emergent-misalignment experiments (training a model
organism of misalignment and measuring, finding and removing the effect); it is research data
for safety studies, not advice or code for real use.

* :func:`insecure_code` - coding requests answered with vulnerable vs. secure Python.
* :func:`risky_finance` - money questions answered recklessly vs. prudently.
* :func:`photo_prompts` - questions about real photographs shipped with scikit-image,
  answered harmfully vs. safely (needs ``pip install scikit-image``).
"""

from steerlab.training.domains._code import CATEGORIES as CODE_CATEGORIES
from steerlab.training.domains._code import insecure_code
from steerlab.training.domains._finance import CATEGORIES as FINANCE_CATEGORIES
from steerlab.training.domains._finance import risky_finance
from steerlab.training.domains._photos import PHOTOS, photo_paths, photo_prompts
from steerlab.training.domains._sampling import DomainCapacityError

#: Generator of each built-in domain, by name (the ``domain`` field of its records).
DOMAINS = {
    "insecure_code": insecure_code,
    "risky_finance": risky_finance,
    "photo_prompts": photo_prompts,
}

__all__ = [
    "CODE_CATEGORIES",
    "DOMAINS",
    "FINANCE_CATEGORIES",
    "PHOTOS",
    "DomainCapacityError",
    "insecure_code",
    "photo_paths",
    "photo_prompts",
    "risky_finance",
]
