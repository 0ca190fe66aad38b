"""Hook names: one type for "which hook point of which block", printed as in TransformerLens.

A :class:`HookName` is the key of a :class:`~steerlab.hooks.record.Recording`, of an
:class:`~steerlab.hooks.store.ActivationStore`, and of the per-layer directions of a
:class:`~steerlab.vectors.SteeringVector` or :class:`~steerlab.vectors.Subspace`. It prints as
``blocks.{layer}.hook_{point}`` (TransformerLens) and :meth:`HookName.parse` reads every form
steerlab has used:

>>> HookName.parse("blocks.6.hook_resid_post")      # TransformerLens (canonical)
HookName(layer=6, point='resid_post')
>>> HookName.parse("L6.resid_post")                 # legacy store tensor names
HookName(layer=6, point='resid_post')
>>> HookName.parse((6, "resid_post")) == HookName.parse(6) == (6, "resid_post")
True
>>> str(HookName(6, "mlp_out"))
'blocks.6.hook_mlp_out'

A ``HookName`` is a ``(layer, point)`` tuple, so it equals, hashes and sorts like one:
``{(6, "resid_post"): x}[HookName(6, "resid_post")]`` works, and so does the reverse.

Negative layers count from the end (``-1`` is the last block). A ``HookName`` keeps the layer
as given; whatever knows the model's depth resolves it: ``Lab`` and ``Recording`` map ``-1``
to ``num_layers - 1`` (``rec.activations[-1]`` is the last block's), while an
``ActivationStore`` does not know the depth and refuses negative layers.
"""

from __future__ import annotations

import operator
import re
from collections import namedtuple
from typing import Any

from steerlab.hooks.layers import HOOK_POINTS

DEFAULT_POINT = "resid_post"
EXAMPLE = "blocks.6.hook_resid_post"
_TL = re.compile(r"blocks\.(?P<layer>[^.]*)\.hook_(?P<point>.*)")
_LEGACY = re.compile(r"L(?P<layer>-?\d+)\.(?P<point>.+)")
_FORMS = (
    f"'blocks.{{layer}}.hook_{{point}}' (e.g. {EXAMPLE!r}), the legacy store form "
    "'L{layer}.{point}', a (layer, point) tuple or an int layer"
)


def check_point(point: Any) -> str:
    """``point`` if it is a hook point name (``resid_post``, ...).

    Raises:
        ValueError: anything else, a non-string included (the message lists the known points).
    """
    if not isinstance(point, str) or point not in HOOK_POINTS:
        raise ValueError(f"unknown hook point {point!r}: expected one of {HOOK_POINTS}")
    return point


def check_layer(layer: Any) -> int:
    """``layer`` as an ``int`` (numpy integers and 0-d integer tensors are accepted).

    Raises:
        TypeError: a bool, float, string or other non-integer.
    """
    if isinstance(layer, bool):
        raise TypeError(f"layer must be an int, got {layer!r}")
    try:
        return operator.index(layer)
    except TypeError:
        raise TypeError(f"layer must be an int, got {type(layer).__name__} {layer!r}") from None


class HookName(namedtuple("_HookName", ("layer", "point"))):
    """``blocks.{layer}.hook_{point}``: one hook point of one decoder block.

    Args:
        layer: block index; negative counts from the end (resolved by whatever knows the
            model's depth, see the module docstring).
        point: one of :data:`~steerlab.hooks.layers.HOOK_POINTS` (default ``resid_post``).

    Raises:
        TypeError: a non-integer layer. ValueError: an unknown point.
    """

    __slots__ = ()
    layer: int
    point: str

    def __new__(cls, layer: int, point: str = DEFAULT_POINT) -> HookName:
        return super().__new__(cls, check_layer(layer), check_point(point))

    def __str__(self) -> str:
        return f"blocks.{self.layer}.hook_{self.point}"

    @classmethod
    def parse(cls, name: Any, point: str | None = DEFAULT_POINT) -> HookName:
        """Read a hook name in any accepted form.

        Args:
            name: ``"blocks.6.hook_resid_post"``, ``"L6.resid_post"``, ``(6, "resid_post")``,
                a ``HookName``, or a bare layer ``6``.
            point: the point a bare layer gets; ``None`` makes a bare layer an error.

        Raises:
            ValueError: a malformed string, an unknown point, or a bare layer with
                ``point=None``. TypeError: any other type.

        Example:
            >>> HookName.parse(-1, point="mlp_out")
            HookName(layer=-1, point='mlp_out')
        """
        if isinstance(name, cls):
            return name
        if isinstance(name, str):
            return cls._parse_str(name)
        if isinstance(name, (tuple, list)):
            if len(name) != 2:
                raise ValueError(f"expected a (layer, point) pair, got {name!r}")
            return cls(*name)
        try:
            layer = check_layer(name)
        except TypeError:
            raise TypeError(
                f"expected a hook name: {_FORMS}; got {type(name).__name__} {name!r}"
            ) from None
        if point is None:
            raise ValueError(f"a bare layer {layer} needs a point: give (layer, point)")
        return cls(layer, point)

    @classmethod
    def _parse_str(cls, name: str) -> HookName:
        m = _TL.fullmatch(name) or _LEGACY.fullmatch(name)
        if m is None:
            raise ValueError(f"hook name {name!r} is not recognised: expected {_FORMS}")
        layer, point = m["layer"], m["point"]
        if not re.fullmatch(r"-?\d+", layer):
            raise ValueError(
                f"hook name {name!r}: layer {layer!r} is not an integer; expected "
                f"'blocks.{{layer}}.hook_{{point}}', e.g. {EXAMPLE!r}"
            )
        if point not in HOOK_POINTS:
            raise ValueError(
                f"hook name {name!r}: unknown hook point {point!r}: expected one of {HOOK_POINTS}"
            )
        return cls(int(layer), point)
