"""Seeded, distinct sampling from combinatorial templates, shared by the domains' generators.

A :class:`Family` is one kind of example (a vulnerability type, a financial situation, a
photo). It declares its *slots*, each a list of options, and a ``render`` function that
turns one choice per slot into a :class:`Draft`. Its capacity is the product of the slot
sizes. :func:`generate` spreads ``n`` examples evenly over the families, draws distinct slot
combinations with a seeded RNG, keeps only drafts whose key (e.g. the prompt) is new, and
raises a clear error when more distinct examples are asked for than the templates can make.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from steerlab.training.data import PairRecord, PairSet, PairSummary

__all__ = ["DomainCapacityError", "Draft", "Family", "check_n_seed", "generate", "sentence"]


class DomainCapacityError(ValueError):
    """More distinct examples were requested than a domain's templates can produce."""


@dataclass(frozen=True)
class Draft:
    """A generated example before it gets an id."""

    prompt: str
    harmful: str
    safe: str
    image: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Family:
    """A kind of example: named option lists and a renderer over one choice of each."""

    name: str
    slots: Mapping[str, Sequence[Any]]
    render: Callable[[dict[str, Any]], Draft]
    max_keys: int | None = None  # upper bound on distinct keys, when below ``capacity``

    @property
    def capacity(self) -> int:
        """Number of slot combinations."""
        return math.prod(len(v) for v in self.slots.values())

    @property
    def limit(self) -> int:
        """Upper bound on the distinct examples this family can make."""
        return self.capacity if self.max_keys is None else min(self.capacity, self.max_keys)

    def decode(self, index: int) -> dict[str, Any]:
        """The slot choice number ``index`` (mixed radix over the slots)."""
        out = {}
        for name, options in self.slots.items():
            index, r = divmod(index, len(options))
            out[name] = options[r]
        return out


def check_n_seed(domain: str, n: Any, seed: Any) -> None:
    """Raise ``TypeError`` unless ``n`` and ``seed`` are ints, ``ValueError`` if ``n < 1``."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{domain}: n must be an integer, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"{domain}: n must be at least 1 (an empty dataset), got {n}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"{domain}: seed must be an integer, got {type(seed).__name__}")


def generate(
    domain: str,
    families: Sequence[Family],
    n: int,
    seed: int,
    *,
    key: Callable[[Draft], Hashable] = lambda d: d.prompt,
    system: str | None = None,
) -> PairSet:
    """``n`` distinct :class:`PairRecord` spread evenly over ``families``.

    Raises:
        TypeError / ValueError: ``n`` is not a positive integer or ``seed`` not an integer.
        DomainCapacityError: ``n`` exceeds what the templates can produce distinctly.
    """
    check_n_seed(domain, n, seed)
    rng = random.Random(f"steerlab:{domain}:{seed}")
    fams = list(families)
    rng.shuffle(fams)
    per, extra = divmod(n, len(fams))
    counts = [per + (i < extra) for i in range(len(fams))]
    max_n = len(fams) * min(f.limit for f in fams)
    for fam, count in zip(fams, counts, strict=True):
        if count > fam.limit:
            raise DomainCapacityError(
                f"{domain}: asked for {n} distinct examples but its templates can produce at "
                f"most about {max_n} spread evenly over {len(fams)} kinds ({fam.name!r} allows "
                f"{fam.limit}); ask for fewer"
            )
    seen: set[Hashable] = set()
    drafts: list[Draft] = []
    for fam, count in zip(fams, counts, strict=True):
        used: set[int] = set()
        got = 0
        budget = 50 * count + 1000
        while got < count:
            if budget == 0 or len(used) == fam.capacity:
                raise DomainCapacityError(
                    f"{domain}: could only produce {got} distinct examples of {fam.name!r} "
                    f"(needed {count}); ask for fewer than {n}"
                )
            budget -= 1
            idx = rng.randrange(fam.capacity)
            if idx in used:
                continue
            used.add(idx)
            draft = fam.render(fam.decode(idx))
            k = key(draft)
            if k in seen:
                continue
            seen.add(k)
            drafts.append(draft)
            got += 1
    rng.shuffle(drafts)
    records = [
        PairRecord(
            id=f"{domain}-{seed}-{i:05d}",
            prompt=d.prompt,
            safe_response=d.safe,
            harmful_response=d.harmful,
            image=d.image,
            system=system,
            domain=domain,
            meta=d.meta,
        )
        for i, d in enumerate(drafts)
    ]
    summary = PairSummary.of(records, source=f"steerlab {domain} (seed {seed})", format="generated")
    return PairSet(records, summary)


def sentence(text: str) -> str:
    """Capitalise the first letter and collapse doubled spaces."""
    text = " ".join(text.split())
    return text[:1].upper() + text[1:]
