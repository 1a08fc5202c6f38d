#!/usr/bin/env python3
"""PyTorch peers of the cuda backend on the same GPU, same shapes, same block layout:
FlexAttention (torch.nn.attention.flex_attention) with a BlockMask built from Starling's layout
(the uint8 [heads, qBlocks, kBlocks] array `starling pattern --npy` writes; CudaBenchmark --export
writes the same arrays as layout_N_H.npy), and dense scaled_dot_product_attention as the quadratic
baseline. Times are CUDA-event medians after warm-up, device-resident tensors (no host copies).
Useful TFLOP/s follow DESIGN section 7: 2*(D+Dv)*P with P the allowed pairs (dense: N*N per head).

It also checks that FlexAttention and Starling agree on the same inputs (q_N.npy, k_N.npy, v_N.npy
and out_N_<precision>.npy from CudaBenchmark --export) within the precision's tolerance.

usage: python3 bench/peers/flex_attention_bench.py --export DIR [--lengths 4096,16384,65536]
           [--heads 8,16] [--dims 64,128] [--dtypes bf16,fp32] [--reps 30]
"""
import argparse
import os
import statistics
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import BlockMask, flex_attention

BLOCK = 64
TOL = {"fp32": (2e-5, 1e-4, 1e-5), "tf32": (3e-3, 3e-3, 1e-3), "bf16": (2e-2, 5e-3, 1e-2)}


def block_mask_from_layout(layout, n):
    mask = torch.from_numpy(layout.astype(bool)).cuda()            # [H, Qb, Kb]
    H, qb, kb = mask.shape
    counts = mask.sum(-1, dtype=torch.int32)[None]                 # [1, H, Qb]
    order = torch.argsort((~mask).to(torch.int8), dim=-1, stable=True).to(torch.int32)[None]  # allowed first, ascending
    zeros_n = torch.zeros_like(counts)
    zeros_i = torch.zeros_like(order)
    try:
        return BlockMask.from_kv_blocks(zeros_n, zeros_i, counts, order, BLOCK_SIZE=BLOCK, mask_mod=None,
                                        seq_lengths=(n, n))
    except TypeError:  # older signature without seq_lengths
        return BlockMask.from_kv_blocks(zeros_n, zeros_i, counts, order, BLOCK_SIZE=BLOCK, mask_mod=None)


def dense_masked_reference(q, k, v, layout):
    """float64 dense attention over exactly the allowed blocks (the oracle's definition), in row chunks."""
    _, h, n, d = q.shape
    mask_blocks = torch.from_numpy(layout.astype(bool)).cuda()
    out = torch.empty(1, h, n, v.shape[-1], dtype=torch.float64, device="cuda")
    scale = 1.0 / float(d) ** 0.5
    for head in range(h):
        kh = k[0, head].double()
        vh = v[0, head].double()
        for r0 in range(0, n, 2048):
            r1 = min(n, r0 + 2048)
            s = (q[0, head, r0:r1].double() @ kh.T) * scale
            allowed = mask_blocks[head][torch.arange(r0, r1, device="cuda") // BLOCK][:, torch.arange(n, device="cuda") // BLOCK]
            s = s.masked_fill(~allowed, float("-inf"))
            out[0, head, r0:r1] = torch.softmax(s, dim=-1) @ vh
    return out


def cuda_median_ms(fn, reps, warmup=5):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        s = torch.cuda.Event(enable_timing=True)
        e = torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export", required=True)
    ap.add_argument("--lengths", default="4096,16384,65536")
    ap.add_argument("--heads", default="8")
    ap.add_argument("--dims", default="64")
    ap.add_argument("--dtypes", default="bf16,fp32")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--no-dense", action="store_true")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    # Every shape compiles its own kernel; without a higher limit dynamo falls back to eager, which
    # materialises N x N scores (out of memory at 65,536 tokens).
    for knob in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit", "accumulated_cache_size_limit"):
        if hasattr(torch._dynamo.config, knob):
            setattr(torch._dynamo.config, knob, 256)
    compiled = torch.compile(flex_attention, dynamic=False)
    # Starling's blocks are 64 x 64; FlexAttention's default tiles are 128, which a 64-block mask
    # cannot use, so its kernel is asked for 64 x 64 tiles.
    options = {"BLOCK_M": 64, "BLOCK_N": 64}

    def flex(q, k, v, block_mask):
        return compiled(q, k, v, block_mask=block_mask, kernel_options=options)
    print(f"device: {torch.cuda.get_device_name()} torch {torch.__version__}")
    print("agreement: FlexAttention vs Starling on the same inputs (8 heads, head dim 64)")
    failures = 0
    for n in map(int, a.lengths.split(",")):
        qf = os.path.join(a.export, f"q_{n}.npy")
        if not os.path.exists(qf):
            continue
        q32 = torch.from_numpy(np.load(qf)).cuda()
        k32 = torch.from_numpy(np.load(os.path.join(a.export, f"k_{n}.npy"))).cuda()
        v32 = torch.from_numpy(np.load(os.path.join(a.export, f"v_{n}.npy"))).cuda()
        bm = block_mask_from_layout(np.load(os.path.join(a.export, f"layout_{n}_8.npy")), n)
        ref64 = dense_masked_reference(q32, k32, v32, np.load(os.path.join(a.export, f"layout_{n}_8.npy")))
        for prec, dt in (("fp32", torch.float32), ("tf32", torch.float32), ("bf16", torch.bfloat16)):
            sf = os.path.join(a.export, f"out_{n}_{prec}.npy")
            if not os.path.exists(sf):
                continue
            starling = torch.from_numpy(np.load(sf)).cuda().double()
            fx = flex(q32.to(dt), k32.to(dt), v32.to(dt), block_mask=bm).double()
            atol, rtol, rel = TOL[prec]
            for label, got in (("starling", starling), ("flex", fx)):
                err = (got - ref64).abs()
                ok_elem = bool((err <= atol + rtol * ref64.abs()).all())
                rel_norm = float((got - ref64).norm() / ref64.norm())
                print(f"  N={n:<6} {prec:<5} {label:<8} vs float64: max |diff| {float(err.max()):.2e}, relative norm {rel_norm:.2e}"
                      f" -> {'within' if ok_elem and rel_norm <= rel else 'OUTSIDE'} {prec} tolerance")
            d_sf = float((starling - fx).abs().max())
            rel_sf = float((starling - fx).norm() / fx.norm())
            print(f"  N={n:<6} {prec:<5} starling vs flex: max |diff| {d_sf:.2e}, relative norm {rel_sf:.2e}")
    print()
    print(f"{'impl':<6} {'prec':<5} {'heads':>5} {'D':>4} {'N':>7} {'ms':>9} {'TFLOP/s':>8}")
    dtypes = {"bf16": torch.bfloat16, "fp32": torch.float32}
    for h in map(int, a.heads.split(",")):
        for d in map(int, a.dims.split(",")):
            for n in map(int, a.lengths.split(",")):
                path = os.path.join(a.export, f"layout_{n}_{h}.npy")
                if not os.path.exists(path):
                    print(f"(no layout {path}; skipped)")
                    continue
                layout = np.load(path)
                pairs = float(layout.sum()) * BLOCK * BLOCK
                bm = block_mask_from_layout(layout, n)
                for name in a.dtypes.split(","):
                    dt = dtypes[name]
                    q = torch.randn(1, h, n, d, device="cuda", dtype=dt)
                    k = torch.randn_like(q)
                    v = torch.randn_like(q)
                    try:
                        ms = cuda_median_ms(lambda: flex(q, k, v, block_mask=bm), a.reps)
                        print(f"{'flex':<6} {name:<5} {h:>5} {d:>4} {n:>7} {ms:>9.3f} {2 * 2 * d * pairs / ms / 1e9:>8.2f}", flush=True)
                    except Exception as e:  # report, keep going
                        print(f"{'flex':<6} {name:<5} {h:>5} {d:>4} {n:>7}  failed: {str(e).splitlines()[0][:200]}", flush=True)
                    if not a.no_dense:
                        try:
                            ms = cuda_median_ms(lambda: F.scaled_dot_product_attention(q, k, v), max(5, a.reps // 3))
                            print(f"{'sdpa':<6} {name:<5} {h:>5} {d:>4} {n:>7} {ms:>9.3f} {2 * 2 * d * float(n) * n * h / ms / 1e9:>8.2f}", flush=True)
                        except Exception as e:
                            print(f"{'sdpa':<6} {name:<5} {h:>5} {d:>4} {n:>7}  failed: {str(e).splitlines()[0][:200]}", flush=True)
                    del q, k, v
                    torch.cuda.empty_cache()

    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
