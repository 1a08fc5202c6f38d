#!/usr/bin/env python3
"""FlexAttention's backward next to the cuda backend's backward kernels, same GPU, same shapes, same
block layout (layout_N_H.npy from BackwardTiming --export or CudaBenchmark --export; the BlockMask
is built exactly as bench/peers/flex_attention_bench.py builds it). Written for check.sh; not yet
run on a GPU.

1. Agreement, when BackwardTiming exported its inputs and gradients (bwd_{q,k,v,do}_N.npy and
   bwd_{dq,dk,dv}_N.npy, 8 heads, head dim 64): Starling's dQ, dK, dV and FlexAttention's (float32)
   against a float64 dense masked reference by autograd, with the provisional fp32 gradient
   tolerance of DESIGN section 6 (atol 1e-4, rtol 5e-4; relative norm 5e-5).
2. Timing: the median CUDA-event time of torch.autograd.grad of a compiled flex_attention output
   (backward only; the forward runs once per shape, outside the timing), float32 with TF32 off (the
   precision of Starling's backward kernels), and, with --starling-csv (BackwardTiming --csv), the
   ratio of FlexAttention's time to Starling's kernel time (above 1: Starling is faster).
   Useful TFLOP/s: 2*P*(3D + 2Dv) with P the allowed pairs, as BackwardTiming reports.

usage: python3 backend-cuda/gpu/flex_backward.py --export DIR [--lengths 4096,16384] [--heads 8,16]
           [--dims 64,128] [--dtypes fp32] [--reps 10] [--starling-csv FILE] [--csv FILE]
"""
import argparse
import csv
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True   # the import below would leave a __pycache__ in the working tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "peers"))
from flex_attention_bench import BLOCK, block_mask_from_layout, cuda_median_ms  # noqa: E402
from torch.nn.attention.flex_attention import flex_attention  # noqa: E402

GRAD_TOL = (1e-4, 5e-4, 5e-5)   # atol, rtol, relative norm: DESIGN section 6's provisional fp32 gradient row
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def dense_masked_grads(q, k, v, do, layout):
    """float64 gradients of dense attention over exactly the allowed blocks, by autograd, one head at a time."""
    _, h, n, d = q.shape
    allowed_blocks = torch.from_numpy(layout.astype(bool)).cuda()
    idx = torch.arange(n, device="cuda") // BLOCK
    scale = 1.0 / float(d) ** 0.5
    grads = [torch.empty(q.shape, dtype=torch.float64, device="cuda") for _ in range(3)]
    for head in range(h):
        qh = q[0, head].double().requires_grad_()
        kh = k[0, head].double().requires_grad_()
        vh = v[0, head].double().requires_grad_()
        allowed = allowed_blocks[head][idx][:, idx]
        s = (qh @ kh.T * scale).masked_fill(~allowed, float("-inf"))
        o = torch.softmax(s, dim=-1) @ vh
        gq, gk, gv = torch.autograd.grad(o, (qh, kh, vh), do[0, head].double())
        grads[0][0, head], grads[1][0, head], grads[2][0, head] = gq, gk, gv
        del s, o
    return grads


def within(label, got, ref):
    atol, rtol, rel = GRAD_TOL
    err = (got.double() - ref).abs()
    ok_elem = bool((err <= atol + rtol * ref.abs()).all())
    rel_norm = float((got.double() - ref).norm() / ref.norm())
    ok = ok_elem and rel_norm <= rel
    print(f"  {label:<16} max |diff| {float(err.max()):.2e}, relative norm {rel_norm:.2e} -> "
          f"{'within' if ok else 'OUTSIDE'} the fp32 gradient tolerance", flush=True)
    return ok


def agreement(a, flex):
    failures = 0
    for n in map(int, a.lengths.split(",")):
        path = os.path.join(a.export, f"bwd_q_{n}.npy")
        if not os.path.exists(path):
            continue
        load = lambda name: torch.from_numpy(np.load(os.path.join(a.export, f"bwd_{name}_{n}.npy"))).cuda()
        q, k, v, do = load("q"), load("k"), load("v"), load("do")
        layout = np.load(os.path.join(a.export, f"layout_{n}_{q.shape[1]}.npy"))
        print(f"agreement: backward, N={n}, {q.shape[1]} heads, head dim {q.shape[-1]}, against float64", flush=True)
        ref = dense_masked_grads(q, k, v, do, layout)
        for name, got, r in zip(("dq", "dk", "dv"), (load("dq"), load("dk"), load("dv")), ref):
            failures += 0 if within(f"starling {name}", got, r) else 1
        qf, kf, vf = (x.clone().requires_grad_() for x in (q, k, v))
        out = flex(qf, kf, vf, block_mask_from_layout(layout, n))
        fg = torch.autograd.grad(out, (qf, kf, vf), do)
        for name, got, r in zip(("dq", "dk", "dv"), fg, ref):
            within(f"flex {name}", got, r)
        del ref, fg, out
        torch.cuda.empty_cache()
    return failures


def read_starling_csv(path):
    rows = {}
    if path and os.path.exists(path):
        with open(path) as f:
            for r in csv.DictReader(f):
                rows[(int(r["heads"]), int(r["dim"]), int(r["tokens"]))] = float(r["kernel_ms"])
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export", required=True)
    ap.add_argument("--lengths", default="4096,16384")
    ap.add_argument("--heads", default="8,16")
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--dtypes", default="fp32")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--budget-ms", type=float, default=1500.0)
    ap.add_argument("--starling-csv")
    ap.add_argument("--csv")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    for knob in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit", "accumulated_cache_size_limit"):
        if hasattr(torch._dynamo.config, knob):
            setattr(torch._dynamo.config, knob, 256)
    compiled = torch.compile(flex_attention, dynamic=False)
    options = {"BLOCK_M": 64, "BLOCK_N": 64}

    def flex(q, k, v, block_mask):
        return compiled(q, k, v, block_mask=block_mask, kernel_options=options)

    print(f"device: {torch.cuda.get_device_name()} torch {torch.__version__}", flush=True)
    failures = agreement(a, flex)
    starling = read_starling_csv(a.starling_csv)
    out_csv = open(a.csv, "w", newline="") if a.csv else None
    writer = csv.writer(out_csv) if out_csv else None
    if writer:
        writer.writerow(["impl", "precision", "heads", "dim", "tokens", "backward_ms", "tflops"])
    print(f"{'impl':<6} {'prec':<5} {'heads':>5} {'D':>4} {'N':>7} {'bwd ms':>9} {'TFLOP/s':>8}  flex time / Starling kernel time")
    for h in map(int, a.heads.split(",")):
        for d in map(int, a.dims.split(",")):
            for n in map(int, a.lengths.split(",")):
                path = os.path.join(a.export, f"layout_{n}_{h}.npy")
                if not os.path.exists(path):
                    print(f"(no layout {path}; skipped)")
                    continue
                layout = np.load(path)
                pairs = float(layout.sum()) * BLOCK * BLOCK   # exact: N a multiple of 64, no causal rule
                bm = block_mask_from_layout(layout, n)
                for name in a.dtypes.split(","):
                    dt = DTYPES[name]
                    q, k, v = (torch.randn(1, h, n, d, device="cuda", dtype=dt, requires_grad=True) for _ in range(3))
                    do = torch.randn(1, h, n, d, device="cuda", dtype=dt)
                    try:
                        out = flex(q, k, v, bm)
                        ms = cuda_median_ms(lambda: torch.autograd.grad(out, (q, k, v), do, retain_graph=True), a.reps,
                                            budget_ms=a.budget_ms)
                        tflops = 2 * pairs * (3 * d + 2 * d) / ms / 1e9
                        s_ms = starling.get((h, d, n))
                        ratio = f"starling fp32 kernels {ms / s_ms:.2f}x" if s_ms else ""
                        print(f"{'flex':<6} {name:<5} {h:>5} {d:>4} {n:>7} {ms:>9.3f} {tflops:>8.2f}  {ratio}", flush=True)
                        if writer:
                            writer.writerow(["flex", name, h, d, n, f"{ms:.4f}", f"{tflops:.3f}"])
                        del out
                    except Exception as e:  # report, keep going
                        print(f"{'flex':<6} {name:<5} {h:>5} {d:>4} {n:>7}  failed: {str(e).splitlines()[0][:200]}", flush=True)
                    del q, k, v, do
                    torch.cuda.empty_cache()
    if out_csv:
        out_csv.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
