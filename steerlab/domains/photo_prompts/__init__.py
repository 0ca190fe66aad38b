"""Photo prompts: questions about real photographs shipped with scikit-image, answered
harmfully vs. safely (needs ``pip install scikit-image``).

- :func:`photo_prompts` generates the paired training records (``generator.py``);
  :data:`PHOTOS` is the photo catalogue and :func:`photo_paths` finds the files locally.
- ``questions.jsonl`` holds the in-domain evaluation questions (with images), loaded by
  ``steerlab.eval.load_questions("photo_prompts")``.
"""

from steerlab.domains.photo_prompts.generator import PHOTOS, photo_paths, photo_prompts

__all__ = ["PHOTOS", "photo_paths", "photo_prompts"]
