"""GPTQ (Frantar et al. 2023), following IST-DASLab/gptq `gptq.py` (`fasterquant`).

Public API:

    HessianCollector(in_features, device)         # .add(x) accumulates X^T X (float32, batched addmm)
        .hessian() -> Tensor                      # H = 2/n * sum_x x x^T   (n = number of sequences)
    gptq_quantize_weight(W, H, bits, group_size=128, sym=True, act_order=True,
                         blocksize=128, percdamp=0.01, static_groups=False) -> (Q float32, loss float)
    gptq_quantize_rows(...same...) -> (Q float32, loss per row [rows])
    gptq_compress(module, H, bits, group_size, sym, act_order) -> dict   # in place; {"error", ...}
    gptq_compress_shared(modules, H, bits, group_size, sym, act_order) -> list[dict]  # stacked rows

Algorithm (as the reference): dead inputs (diag(H) == 0) get H_ii = 1 and W[:, i] = 0;
damping 0.01 * mean(diag(H)); Hinv = upper Cholesky factor of H^-1; columns are quantized one
at a time inside lazy blocks of 128, each error (w - q) / Hinv_ii is spread over the remaining
columns of the block, and the block's accumulated errors over all later columns at once.
Inside a block the spreading is itself lazy (`spread_error`: at once only within 16-column inner
blocks, the rest of the block per inner block in one product): the same sums regrouped, tested
against a literal transcription of the reference loop (tests/compress/reference_loops.py).

Groups: quantization parameters are (re)computed from the *current* (error-updated) weights
every `group_size` columns, as `W[:, j:j+group_size]` of the outer matrix, exactly like the
reference (inside a 128-column block that slice does not yet carry that block's own updates --
a reference quirk we keep). `group_size=-1`: one range per output row, from the original W.

act_order (desc_act): columns are processed in order of decreasing diag(H). With groups, the
groups are consecutive `group_size` columns *in that permuted order* (the reference's
`--act-order --groupsize` and AutoGPTQ desc_act with static_groups=False, which the paper used);
each group still holds at most 2^bits values, but its columns are scattered in the original
layout. The result is permuted back before being written.

static_groups (`gptq-4b-g128-static`, AutoGPTQ `static_groups=True`, compressed-tensors'
`actorder: weight`): every group's range is fixed up front from the original (dead-zeroed)
weights of its `group_size` consecutive columns, and each column uses its own group's range
whatever order act-order visits it in. Groups then stay consecutive columns, the only layout
compressed-tensors can store, so act-order variants with static groups pack (packed.py).
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import wraps

import torch
from torch import nn

from .quantizer import minmax_params


@contextmanager
def one_thread():
    """Run single-threaded: the column-by-column loops are made of tiny ops whose OpenMP hand-offs
    cost far more than the work (measured on 2 busy cores: a 960x576 GPTQ takes 0.1 s CPU / 0.4 s
    wall on one thread, 2.9 s CPU / 8.8 s wall on two). torch's thread count is process-wide, so
    other torch work in the process runs on one thread meanwhile; restored afterwards."""
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def single_threaded(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        with one_thread():
            return fn(*args, **kwargs)

    return wrapper


class HessianCollector:
    """Running sum of X^T X over calibration tokens (float32).

    On CPU, wide inputs accumulate only the upper block triangle (row blocks of `BLOCK` features
    against the columns from the block's start: ~56% of the FLOPs at 1536 features) and
    `hessian()` mirrors it; elsewhere one full `addmm`."""

    BLOCK = 192

    def __init__(self, in_features: int, device: torch.device | str):
        self.H = torch.zeros(in_features, in_features, dtype=torch.float32, device=device)
        self.nsamples = 0
        self.upper_only = self.H.device.type == "cpu" and in_features >= 2 * self.BLOCK

    def add(self, x: torch.Tensor) -> None:
        self.nsamples += x.shape[0] if x.dim() >= 3 else 1
        x2 = x.reshape(-1, x.shape[-1]).to(torch.float32)
        if not self.upper_only:
            self.H.addmm_(x2.t(), x2)
            return
        d = x2.shape[1]
        for i0 in range(0, d, self.BLOCK):
            i1 = min(i0 + self.BLOCK, d)
            self.H[i0:i1, i0:].addmm_(x2[:, i0:i1].t(), x2[:, i0:])

    def hessian(self) -> torch.Tensor:
        """A fresh tensor 2/n * sum x x^T (the reference's running mean, same value)."""
        H = self.H
        if self.upper_only:
            H = torch.triu(H) + torch.triu(H, 1).t()
        return H * (2.0 / max(1, self.nsamples))


def _inverse_cholesky_upper(H: torch.Tensor, percdamp: float) -> torch.Tensor:
    """The reference's `cholesky(cholesky_inverse(cholesky(H + damp)), upper=True)`, computed as
    one Cholesky and one triangular inverse: with J the reversal permutation and J H J = L L^T,
    U = J L^-1 J is upper triangular with a positive diagonal and U^T U = H^-1, so it *is* the
    upper Cholesky factor of H^-1 (unique). 2-3x faster on CPU at 1536 columns (no n^3 product,
    no second factorisation). `H` is modified in place (damped)."""
    damp = percdamp * torch.mean(torch.diag(H))
    idx = torch.arange(H.shape[0], device=H.device)
    H[idx, idx] += damp
    L = torch.linalg.cholesky(torch.flip(H, (0, 1)))
    return torch.flip(_lower_triangular_inverse(L), (0, 1))


def _lower_triangular_inverse(L: torch.Tensor, leaf: int = 384) -> torch.Tensor:
    """L^-1 for lower-triangular L, by blocks: [[A, 0], [B, C]]^-1 = [[A^-1, 0], [-C^-1 B A^-1, C^-1]].
    About n^3/3 flops in matrix products instead of a full triangular solve against the identity
    (1.7x faster on CPU at 1536; same result to ~1e-9)."""
    n = L.shape[0]
    if n <= leaf:
        return torch.linalg.solve_triangular(L, torch.eye(n, dtype=L.dtype, device=L.device), upper=False)
    h = n // 2
    a_inv = _lower_triangular_inverse(L[:h, :h], leaf)
    c_inv = _lower_triangular_inverse(L[h:, h:], leaf)
    out = torch.zeros_like(L)
    out[:h, :h] = a_inv
    out[h:, h:] = c_inv
    out[h:, :h] = -(c_inv @ (L[h:, :h] @ a_inv))
    return out


INNER_BLOCK = 16


def spread_error(W1: torch.Tensor, Err1: torch.Tensor, Hinv1: torch.Tensor, i: int, count: int,
                 inner: int = INNER_BLOCK) -> None:
    """Compensate column i's error on the block's later columns, lazily in two levels.

    The references update every remaining column of the 128-column block after each column
    (`W1[:, i:] -= err * Hinv1[i, i:]`). Only the next columns of the current INNER_BLOCK need
    that at once; the rest of the block takes the inner block's errors in one product when the
    inner block ends -- the references' own lazy-batch trick applied once more (same sums,
    regrouped). Column i's error must be final (Err1[i] written) before the call."""
    s1 = i - i % inner
    s2 = min(s1 + inner, count)
    if i + 1 < s2:  # row i itself is never read again
        W1[i + 1 : s2].addr_(Hinv1[i, i + 1 : s2], Err1[i], alpha=-1.0)
    if i + 1 == s2 and s2 < count:
        W1[s2:].addmm_(Hinv1[s1:s2, s2:].t(), Err1[s1:s2], alpha=-1.0)


def _prepare(W: torch.Tensor, H: torch.Tensor, percdamp: float, act_order: bool):
    """Dead inputs, optional act-order permutation, Hinv: (W^T [cols, rows] contiguous, Hinv, perm).
    Runs on all threads (BLAS-3); the column loops that follow run on one."""
    W = W.detach().to(torch.float32).clone()
    H = H.detach().to(torch.float32).clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    perm = None
    if act_order:
        perm = torch.argsort(torch.diag(H), descending=True)
        W = W[:, perm]
        H = H[perm][:, perm]
    Hinv = _inverse_cholesky_upper(H, percdamp)
    return W.t().contiguous(), Hinv, perm


@torch.no_grad()
def gptq_quantize_rows(
    W: torch.Tensor,
    H: torch.Tensor,
    bits: int,
    group_size: int = 128,
    sym: bool = True,
    act_order: bool = True,
    blocksize: int = 128,
    percdamp: float = 0.01,
    static_groups: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize W [rows, cols] given the Hessian H [cols, cols]; returns (Q float32, loss per row).
    Rows are independent given H, so stacked matrices sharing an input (q/k/v) can go in one call.

    The weights are held transposed ([cols, rows]) so that the column being quantized and the
    block's rank-1 updates touch contiguous memory (the reference's W1[:, i:] is strided)."""
    maxq = 2**bits - 1
    rows, cols = W.shape
    WT, Hinv, perm = _prepare(W, H, percdamp, act_order)
    static = None
    if static_groups and group_size != -1:
        original = WT.t() if perm is None else WT.t()[:, torch.argsort(perm)]  # dead-zeroed, unpermuted
        ranges = [minmax_params(original[:, c : c + group_size], bits, sym) for c in range(0, cols, group_size)]
        static = (torch.stack([r[0].flatten() for r in ranges]), torch.stack([r[1].flatten() for r in ranges]))
        col_group = ((perm if perm is not None else torch.arange(cols)) // group_size).tolist()
    with one_thread():
        scale, zero = minmax_params(WT.t(), bits, sym)  # per channel (overridden per group below)
        scale, zero = scale.flatten(), zero.flatten()
        QT = torch.empty_like(WT)
        losses = torch.zeros(rows, dtype=torch.float32, device=WT.device)
        for i1 in range(0, cols, blocksize):
            i2 = min(i1 + blocksize, cols)
            count = i2 - i1
            W1 = WT[i1:i2].clone()
            Q1 = QT[i1:i2]
            Err1 = torch.empty_like(W1)
            Hinv1 = Hinv[i1:i2, i1:i2]
            for i in range(count):
                col = i1 + i
                if static is not None:
                    scale, zero = static[0][col_group[col]], static[1][col_group[col]]
                elif group_size != -1 and col % group_size == 0:
                    # from the outer matrix, which does not yet carry this block's updates (reference)
                    scale, zero = minmax_params(WT[col : col + group_size].t(), bits, sym)
                    scale, zero = scale.flatten(), zero.flatten()
                w = W1[i]
                q = Q1[i]
                torch.div(w, scale, out=q).round_().add_(zero).clamp_(0, maxq).sub_(zero).mul_(scale)
                err = Err1[i]
                torch.sub(w, q, out=err).div_(Hinv1[i, i])
                losses.addcmul_(err, err)
                spread_error(W1, Err1, Hinv1, i, count, INNER_BLOCK)
            if i2 < cols:
                WT[i2:].addmm_(Hinv[i1:i2, i2:].t(), Err1, alpha=-1.0)
    Q = QT.t()
    if perm is not None:
        Q = Q[:, torch.argsort(perm)]
    return Q.contiguous(), losses / 2


def gptq_quantize_weight(W, H, bits, group_size=128, sym=True, act_order=True, blocksize=128, percdamp=0.01,
                         static_groups=False):
    """Quantize W [rows, cols] given the Hessian H [cols, cols]; returns (Q float32, loss)."""
    Q, losses = gptq_quantize_rows(W, H, bits, group_size, sym, act_order, blocksize, percdamp, static_groups)
    return Q, float(losses.sum())


@torch.no_grad()
def gptq_compress_shared(
    modules: list[nn.Linear], H: torch.Tensor, bits: int, group_size: int, sym: bool, act_order: bool,
    static_groups: bool = False,
) -> list[dict]:
    """GPTQ for linears that share one input/Hessian (q/k/v, gate/up): one pass over their stacked
    rows -- the same result as one call per module, with a third of the Python column loop."""
    Ws = [m.weight.data for m in modules]
    Q, losses = gptq_quantize_rows(torch.cat([w.float() for w in Ws]), H, bits, group_size, sym, act_order,
                                   static_groups=static_groups)
    return write_back_rows(modules, Q, losses)


def write_back_rows(modules: list[nn.Linear], stacked: torch.Tensor, losses: torch.Tensor) -> list[dict]:
    """Split rows processed together (modules sharing one Hessian) back into each module's weight."""
    out, r0 = [], 0
    for m in modules:
        W = m.weight.data
        r1 = r0 + W.shape[0]
        m.weight.data = stacked[r0:r1].to(W.dtype).contiguous()
        out.append({"error": float(losses[r0:r1].sum()), "sparsity": float((m.weight.data == 0).float().mean())})
        r0 = r1
    return out


@torch.no_grad()
def gptq_compress(
    module: nn.Linear, H: torch.Tensor, bits: int, group_size: int, sym: bool, act_order: bool,
    static_groups: bool = False,
) -> dict:
    return gptq_compress_shared([module], H, bits, group_size, sym, act_order, static_groups)[0]
