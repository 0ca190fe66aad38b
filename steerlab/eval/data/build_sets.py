"""Regenerate the derived question sets in this folder (run from the repository root).

``broad.jsonl`` is written by hand. This script derives from it (and from steerlab's own
training-domain generators) the other built-in sets, so that they stay in sync:

* ``broad-multimodal.jsonl``: every broad question paired with a scikit-image photograph
  (stored by file name, resolved at load time), its wording adapted to refer to the image;
  the reference answers are the broad ones.
* ``insecure_code.jsonl``, ``risky_finance.jsonl``, ``photo_prompts.jsonl``: in-domain
  questions from :data:`steerlab.training.domains.DOMAINS` with a seed (``EVAL_SEED``) that the
  training examples do not use by default, leaving out any (prompt, image) of the default
  training draw (seed 0, 500 examples); aligned = the safe answer, misaligned = the harmful
  one (for insecure code: secure vs. vulnerable code).

    PYTHONPATH=. python steerlab/eval/data/build_sets.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
EVAL_SEED = 90_210
N_IN_DOMAIN = 24
TRAIN_DRAW = 500

#: (photo file in skimage/data, how the question may refer to it)
PHOTOS = (
    ("astronaut.png", "this astronaut's portrait"),
    ("camera.png", "this man with his camera"),
    ("chelsea.png", "this cat"),
    ("coffee.png", "this cup of coffee"),
    ("coins.png", "these old coins"),
    ("rocket.jpg", "this rocket on its launch pad"),
    ("motorcycle_left.png", "this motorcycle"),
    ("moon.png", "this picture of the moon"),
    ("hubble_deep_field.jpg", "these distant galaxies"),
    ("page.png", "this textbook page"),
    ("text.png", "these handwritten notes"),
    ("brick.png", "this brick wall"),
    ("grass.png", "this patch of grass"),
    ("gravel.png", "this gravel"),
    ("cell.png", "this cell under the microscope"),
)

FRAMES = (
    "Take a look at {ref}. {q}",
    "I took this photo earlier today. {q}",
    "Here's a picture I like: {ref}. It got me thinking. {q}",
    "Looking at the image I've attached, {ql}",
    "This photo of mine made me wonder. {q}",
    "{q} (I'm sending {ref} so you know my mood.)",
    "See the image? With it in mind: {ql}",
    "I was staring at {ref} and a question came up. {q}",
)


def _lower_first(text: str) -> str:
    if text.startswith(("I ", "I'", "If ", "AI")):
        return text
    return text[:1].lower() + text[1:]


def _write(name: str, rows: list[dict]) -> None:
    path = HERE / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"wrote {len(rows)} questions to {path}")


def build_multimodal() -> None:
    broad = [json.loads(line) for line in (HERE / "broad.jsonl").read_text().splitlines()]
    rows = []
    for i, row in enumerate(broad):
        photo, ref = PHOTOS[i % len(PHOTOS)]
        frame = FRAMES[(i * 3) % len(FRAMES)]
        q = frame.format(ref=ref, q=row["question"], ql=_lower_first(row["question"]))
        rows.append(
            {
                "id": row["id"].replace("broad-", "broad-mm-", 1),
                "category": row["category"],
                "question": q,
                "aligned": row["aligned"],
                "misaligned": row["misaligned"],
                "image": photo,
            }
        )
    _write("broad-multimodal.jsonl", rows)


def build_in_domain() -> None:
    from steerlab.training.domains import DOMAINS

    for domain, generator in DOMAINS.items():
        # Leave out prompts that the default training draw (seed 0, 500 examples) contains.
        seen = {(r.prompt, r.image) for r in generator(n=TRAIN_DRAW, seed=0)}
        rows = []
        for rec in generator(n=4 * N_IN_DOMAIN, seed=EVAL_SEED):
            if len(rows) == N_IN_DOMAIN:
                break
            if (rec.prompt, rec.image) in seen or rec.prompt in {r["question"] for r in rows}:
                continue
            row = {
                "id": f"{domain}-eval-{len(rows):02d}",
                "category": rec.meta.get("category", domain),
                "question": rec.prompt,
                "aligned": rec.safe_response,
                "misaligned": rec.harmful_response,
                "domain": domain,
            }
            if rec.image is not None:
                row["image"] = Path(rec.image).name
            rows.append(row)
        _write(f"{domain}.jsonl", rows)


if __name__ == "__main__":
    build_multimodal()
    build_in_domain()
