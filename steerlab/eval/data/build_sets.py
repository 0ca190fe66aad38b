"""Regenerate the derived broad question set in this folder (run from the repository root).

``broad.jsonl`` is written by hand. This script derives ``broad-multimodal.jsonl`` from it,
so that the two stay in sync: every broad question paired with a scikit-image photograph
(stored by file name, resolved at load time), its wording adapted to refer to the image;
the reference answers are the broad ones.

    PYTHONPATH=. python steerlab/eval/data/build_sets.py

The in-domain sets live in each domain's folder and are written by
``python -m steerlab.domains.build_questions``.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

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


if __name__ == "__main__":
    build_multimodal()
