"""Recover the integer grid under fake-quantized weights, exactly, or say why there is none.

    recover_grid(W, bits, group_size, sym) -> Grid     # raises OffGrid naming what failed

ctrust's quantizers (quantizer.py, shared by RTN, GPTQ and AWQ) store each weight as
`fl32(scale * k)`, k an integer: symmetric k in [-2^(b-1), 2^(b-1)-1], asymmetric k = q - zero
with q, zero in [0, 2^b - 1]. Packing needs (scale, k, zero) back. Rather than trusting the
method to hand them over, they are read off the weights themselves, so the same code packs a
fresh variant and a fake-quant folder written by an earlier ctrust (`ctrust models pack`):

1. per group (the spec's groups: `group_size` consecutive input columns, the last one shorter
   when the width is not a multiple, as quantizer.quantize_groups makes them), the smallest
   non-zero |w| is a first unit u; k = round(w / u) must be integers (|w/u - k| <= 1e-3), else
   the group is retried with units gap / t for the smallest gap between its distinct values
   (0 included) and t = 1 .. 2^b - 1 (rare: only when no level next to 0 is used);
2. the scale is fixed to the float32 number s with fl32(s * k) == w for every weight of the
   group: the candidates are fl32(w_j / k_j) for the weight with the largest |k| and its
   neighbours within 3 ulps (the true scale is always among them, as fl32(s * k_j) is within
   half an ulp of s * k_j);
3. the codes must fit the spec's bits: symmetric k in [-2^(b-1), 2^(b-1)-1]; asymmetric
   max(k) - min(k) <= 2^b - 1, stored as compressed-tensors' signed codes x = k + zp with
   x, zp in [-2^(b-1), 2^(b-1)-1] (zp the smallest valid one).

Any scale and codes that reproduce the weights bit for bit are as good as the original ones:
the dequantized weights (`(x - zp) * s` in float32, what compressed-tensors computes) are the
same numbers. A group where no such scale exists, or whose codes need more than `bits` bits, is
off the spec's grid: `OffGrid` says which group and why. An all-zero group gets scale 1, k = 0.

`packed_group_size(group_size, *widths)`: compressed-tensors needs every group to be
`group_size` wide, so a width that is not a multiple of the spec's group (SmolLM2's 576 inputs
at g128: four groups of 128 and one of 64) is stored with gcd(group_size, widths) columns per
group and each spec group's scale repeated over its parts (576 at g128 -> g64): the same grid,
at 2x the scale bytes. One size for the whole model (packed.pack_model passes every width),
because transformers 5.24 dequantizes every dense module of a checkpoint with one scheme.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_NEAR = 1e-3  # |w/u - round(w/u)| tolerated when reading codes (float32 relative error ~6e-8)
_ULPS = 3


class OffGrid(ValueError):
    """The weights are not on the spec's integer grid (message: which group and why)."""


@dataclass(frozen=True)
class Grid:
    """Codes and parameters that reproduce a weight exactly, laid out for compressed-tensors."""

    codes: torch.Tensor  # int8 [rows, cols]: signed codes x
    scale: torch.Tensor  # float32 [rows, n_groups] (per packed group; [rows, 1] per channel)
    zero: torch.Tensor  # int8 [rows, n_groups]: signed zero points (all 0 when symmetric)
    group_size: int  # packed group size (-1: per channel)

    def dequantize(self) -> torch.Tensor:
        """(x - zp) * s in float32, group by group: what compressed-tensors computes."""
        rows, cols = self.codes.shape
        g = cols if self.group_size == -1 else self.group_size
        x = self.codes.float().reshape(rows, cols // g, g)
        z = self.zero.float().unsqueeze(-1)
        return ((x - z) * self.scale.unsqueeze(-1)).reshape(rows, cols)


def packed_group_size(group_size: int, *widths: int) -> int:
    """The group size compressed-tensors stores for spec groups over weights of these input widths."""
    if group_size == -1:
        return -1
    return math.gcd(group_size, *widths)


def _codes(v: torch.Tensor, unit: torch.Tensor, refine: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer codes (float32) of v [G, n] in units [G], and whether every ratio was near an integer.
    `refine`: first re-derive the unit from the largest code (a unit read off a small gap carries
    the rounding error of two weights, too much for 8-bit codes up to 128)."""
    if refine:
        k = torch.round(v.double() / unit.double().unsqueeze(1))
        j = k.abs().argmax(dim=1, keepdim=True)
        kj = k.gather(1, j)
        unit = torch.where(kj != 0, v.double().gather(1, j) / torch.where(kj == 0, torch.ones_like(kj), kj),
                           unit.double().unsqueeze(1)).squeeze(1)
    ratio = (v.double() / unit.double().unsqueeze(1)) if refine else v / unit.unsqueeze(1)
    k = torch.round(ratio)
    ok = ((ratio - k).abs() <= _NEAR).all(dim=1)
    return k.float(), ok


def _exact_scale(v: torch.Tensor, k: torch.Tensor, j: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of v [G, n] with codes k [G, n] (float32): a float32 s with fl32(s*k) == v, and a
    found-mask. `j` [G, 1]: the column of the largest |v| (= the largest |k|), if known."""
    if j is None:
        j = k.abs().argmax(dim=1, keepdim=True)
    kj = k.gather(1, j).squeeze(1).double()
    vj = v.gather(1, j).squeeze(1).double()
    s0 = torch.where(kj == 0, torch.ones_like(vj), (vj / torch.where(kj == 0, torch.ones_like(kj), kj)).abs()).float()
    found = (s0 > 0) & (s0.unsqueeze(1) * k == v).all(dim=1)
    best = s0.clone()
    todo = torch.nonzero(~found).flatten()
    if todo.numel():  # the few groups where fl32(v_j / k_j) is an ulp or two off: try neighbours
        vt, kt = v[todo], k[todo]
        up = down = s0[todo]
        sub_found = torch.zeros(todo.numel(), dtype=torch.bool)
        sub_best = s0[todo].clone()
        for _ in range(_ULPS):
            up = torch.nextafter(up, torch.full_like(up, math.inf))
            down = torch.nextafter(down, torch.zeros_like(down))
            for c in (up, down):
                hit = ~sub_found & (c > 0) & (c.unsqueeze(1) * kt == vt).all(dim=1)
                sub_best = torch.where(hit, c, sub_best)
                sub_found |= hit
        best[todo] = sub_best
        found[todo] = sub_found
    return best, found


def _slow_group(v: torch.Tensor, maxq: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Codes and scale of one group [n] whose smallest |w| is not one unit (rare path)."""
    levels = torch.unique(torch.cat([v, v.new_zeros(1)]))
    gaps = torch.diff(levels)
    gap = float(gaps.min()) if gaps.numel() else 0.0
    if gap <= 0:
        return None
    for t in range(1, maxq + 1):
        unit = v.new_tensor([gap / t])
        k, ok = _codes(v.unsqueeze(0), unit, refine=True)
        if bool(ok[0]):
            s, found = _exact_scale(v.unsqueeze(0), k)
            if bool(found[0]):
                return k[0], s
    return None


def _recover_groups(V: torch.Tensor, bits: int, sym: bool, where: str) -> tuple[torch.Tensor, ...]:
    """V [G, n] float32 -> (k [G, n] integer-valued float32, scale [G], zero [G]) in compressed-tensors' signed form."""
    G = V.shape[0]
    maxq = 2**bits - 1
    absv = V.abs()
    unit = torch.where(absv > 0, absv, torch.full_like(absv, math.inf)).amin(dim=1)
    empty = torch.isinf(unit)
    unit = torch.where(empty, torch.ones_like(unit), unit)
    k, ok = _codes(V, unit)
    scale, found = _exact_scale(V, k, absv.argmax(dim=1, keepdim=True))
    good = ok & found
    for gi in torch.nonzero(~good).flatten().tolist():
        res = _slow_group(V[gi], maxq)
        if res is None:
            raise OffGrid(f"{where}: group {gi} is not on any {bits}-bit grid (no float32 scale reproduces its values)")
        k[gi], scale[gi] = res[0], res[1][0]
    scale = torch.where(empty, torch.ones_like(scale), scale)
    kmin, kmax = k.min(dim=1).values, k.max(dim=1).values
    half = 2 ** (bits - 1)
    if sym:
        bad = (kmin < -half) | (kmax > half - 1)
        zero = torch.zeros(G)
    else:
        lo = torch.clamp(-half - kmin, min=-half)
        hi = torch.clamp(half - 1 - kmax, max=half - 1)
        bad = (kmax - kmin > maxq) | (lo > hi)
        zero = lo
    if bool(bad.any()):
        gi = int(torch.nonzero(bad)[0])
        kind = "symmetric" if sym else "asymmetric"
        raise OffGrid(f"{where}: group {gi} needs codes {int(kmin[gi])}..{int(kmax[gi])}, "
                      f"more than a {kind} {bits}-bit grid holds")
    return k, scale, zero


@torch.no_grad()
def recover_grid(W: torch.Tensor, bits: int, group_size: int, sym: bool, where: str = "weight",
                 packed_group: int | None = None) -> Grid:
    """Codes, scales and zero points that reproduce W [rows, cols] exactly; see the module doc.
    `packed_group`: the stored group size (default `packed_group_size(group_size, cols)`); it must
    divide both the spec's group size and the width."""
    if W.dim() != 2:
        raise OffGrid(f"{where}: expected a 2-D weight, got shape {tuple(W.shape)}")
    V = W.detach().float().cpu() + 0.0  # + 0.0 turns -0.0 into 0.0: one encoding per value
    if not torch.isfinite(V).all():
        raise OffGrid(f"{where}: holds inf or nan")
    rows, cols = V.shape
    gs = cols if group_size == -1 else group_size
    pgs = packed_group_size(group_size, cols) if packed_group is None else packed_group
    if pgs != -1 and (cols % pgs or (group_size != -1 and group_size % pgs)):
        raise OffGrid(f"{where}: packed group {pgs} does not divide group {group_size} and width {cols}")
    # spec groups: full ones as a batch, the shorter tail on its own
    full = cols // gs * gs
    parts = []
    if full:
        parts.append((0, full, gs))
    if full < cols:
        parts.append((full, cols, cols - full))
    codes = torch.empty(rows, cols, dtype=torch.int8)
    n_packed = 1 if pgs == -1 else cols // pgs
    scale = torch.empty(rows, n_packed, dtype=torch.float32)
    zero = torch.empty(rows, n_packed, dtype=torch.int8)
    for c0, c1, g in parts:
        n = (c1 - c0) // g
        block = V[:, c0:c1].reshape(rows * n, g)
        k, s, z = _recover_groups(block, bits, sym, where)
        codes[:, c0:c1] = (k + z.unsqueeze(1)).reshape(rows, c1 - c0).to(torch.int8)
        width = g if pgs == -1 else pgs
        rep = g // width
        p0 = 0 if pgs == -1 else c0 // pgs
        scale[:, p0 : p0 + n * rep] = s.reshape(rows, n).repeat_interleave(rep, dim=1)
        zero[:, p0 : p0 + n * rep] = z.reshape(rows, n).repeat_interleave(rep, dim=1).to(torch.int8)
    grid = Grid(codes, scale, zero, pgs)
    back = grid.dequantize()
    if not torch.equal(back.view(torch.int32), V.view(torch.int32)):  # bit for bit
        bad = int((back.view(torch.int32) != V.view(torch.int32)).sum())
        raise OffGrid(f"{where}: {bad} weights do not round-trip exactly through the recovered grid")
    return grid
