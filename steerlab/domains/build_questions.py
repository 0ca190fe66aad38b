"""Regenerate each domain's in-domain question set, ``steerlab/domains/<name>/questions.jsonl``.

The questions come from the domain's own generator with a seed (:data:`EVAL_SEED`) that the
training examples do not use by default, leaving out every (prompt, image) of the default
training draw (seed 0, :data:`TRAIN_DRAW` examples); other training draws can still contain
some of them. Aligned = the safe answer, misaligned = the harmful one (for insecure code:
secure vs. vulnerable code). Run from the repository root:

    python -m steerlab.domains.build_questions              # every domain
    python -m steerlab.domains.build_questions risky_finance
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steerlab.domains import DOMAINS, Domain
from steerlab.files import atomic_path

__all__ = ["EVAL_SEED", "N_IN_DOMAIN", "TRAIN_DRAW", "in_domain_questions", "write_questions"]

EVAL_SEED = 90_210
N_IN_DOMAIN = 24
TRAIN_DRAW = 500


def in_domain_questions(
    domain: Domain, *, n: int = N_IN_DOMAIN, seed: int = EVAL_SEED, train_draw: int = TRAIN_DRAW
) -> list[dict[str, Any]]:
    """``n`` question rows (the schema of ``steerlab/eval/data/SCHEMA.md``) drawn from
    ``domain``'s generator with ``seed``, none of them in its ``(train_draw, seed 0)`` draw and
    no question twice."""
    seen = {(r.prompt, r.image) for r in domain.generate(train_draw, 0)}
    rows: list[dict[str, Any]] = []
    for rec in domain.generate(4 * n, seed):
        if len(rows) == n:
            break
        if (rec.prompt, rec.image) in seen or rec.prompt in {r["question"] for r in rows}:
            continue
        row = {
            "id": f"{domain.name}-eval-{len(rows):02d}",
            "category": rec.meta.get("category", domain.name),
            "question": rec.prompt,
            "aligned": rec.safe_response,
            "misaligned": rec.harmful_response,
            "domain": domain.name,
        }
        if rec.image is not None:
            row["image"] = Path(rec.image).name
        rows.append(row)
    return rows


def write_questions(domain: Domain) -> Path:
    """Write ``domain``'s in-domain questions to its ``questions.jsonl`` (atomically, UTF-8,
    one JSON object per line); return the path."""
    rows = in_domain_questions(domain)
    with atomic_path(domain.questions_path) as tmp:
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return domain.questions_path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"domains (default: all of {list(DOMAINS)})")
    names = parser.parse_args(argv).names or list(DOMAINS)
    unknown = [n for n in names if n not in DOMAINS]
    if unknown:
        parser.error(f"unknown domain(s) {unknown}; expected some of {list(DOMAINS)}")
    for name in names:
        path = write_questions(DOMAINS[name])
        print(f"wrote the in-domain questions of {name} to {path}")


if __name__ == "__main__":
    main()
