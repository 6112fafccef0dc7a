"""Everything derived from the one pyramid knob, ``num_levels``.

docs/decisions.md D69.

A bottom-layer module: the data (padding) and the model (levels, ranges) both derive from it.
"""

from __future__ import annotations

from dataclasses import dataclass

# Largest regression distance of the last level, in grid units (ActionFormer / TriDet configs).
UNBOUNDED = 10000.0
# Level 0 regresses distances in [0, 4]; level l >= 1 in [2^(l+1), 2^(l+2)]
# (ActionFormer regression_range for 6 levels; docs/decisions.md D19).
FIRST_LEVEL_MAX = 4.0


@dataclass(frozen=True)
class PyramidSpec:
    """Strides, regression ranges and padding divisor of an ``num_levels``-level pyramid.

    Level ``l`` has stride ``2**l`` in level-0 grid units; its points sit at ``t = i * 2**l``
    (no half-stride offset, as in ActionFormer's point generator).
    """

    num_levels: int

    def __post_init__(self) -> None:
        if not 1 <= self.num_levels <= 10:
            raise ValueError(f"num_levels must be in 1..10, got {self.num_levels}")

    @property
    def strides(self) -> list[int]:
        return [2**level for level in range(self.num_levels)]

    @property
    def regression_ranges(self) -> list[tuple[float, float]]:
        ranges = [(0.0, FIRST_LEVEL_MAX)]
        for level in range(1, self.num_levels):
            ranges.append((FIRST_LEVEL_MAX * 2 ** (level - 1), FIRST_LEVEL_MAX * 2**level))
        lo, _ = ranges[-1]
        ranges[-1] = (lo, UNBOUNDED)
        return ranges

    @property
    def divisor(self) -> int:
        """Sequence lengths fed to the detector must be a multiple of this."""
        return self.strides[-1]

    def check_length(self, length: int, name: str = "sequence length") -> None:
        """The one check that a padded length fits the pyramid.

        Raises:
            ValueError: ``length`` is not a multiple of :attr:`divisor`; the message names
                ``name`` and the nearest valid lengths.
        """
        if length % self.divisor:
            lower = length // self.divisor * self.divisor
            nearest = " or ".join(
                str(n) for n in sorted({lower or self.divisor, lower + self.divisor})
            )
            raise ValueError(
                f"{name}={length} is not a multiple of {self.divisor} = 2**(num_levels-1) "
                f"(num_levels={self.num_levels}); use {nearest}"
            )
