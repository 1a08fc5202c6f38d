#!/usr/bin/env python3
"""PyTorch peers of the cuda backend on the same GPU, same shapes, same block layout:
FlexAttention (torch.nn.attention.flex_attention) with a BlockMask built from Starling's layout
(the uint8 [heads, qBlocks, kBlocks] array `starling pattern --npy` writes; CudaBenchmark --export
writes the same arrays as layout_N_H.npy), and dense scaled_dot_product_attention as the quadratic
baseline. Times are CUDA-event medians after warm-up, device-resident tensors (no host copies).
Useful TFLOP/s follow DESIGN section 7: 2*(D+Dv)*P with P the allowed pairs (dense: N*N per head).

It also checks that FlexAttention and Starling agree on the same inputs (q_N.npy, k_N.npy, v_N.npy
and out_N_<precision>[_<variant>].npy from CudaBenchmark --export) within the precision's tolerance.

--warm-only compiles FlexAttention for every shape and returns without timing: run it while the GPU
does something light (check.sh runs it next to the conformance kit), and the timing run then finds
its kernels in Inductor's and Triton's on-disk caches. --starling-csv FILE (CudaBenchmark --csv)
adds, for every row, the ratio of FlexAttention's time to each Starling variant's (above 1:
Starling is faster). --csv FILE writes the peers' rows.

usage: python3 bench/peers/flex_attention_bench.py --export DIR [--lengths 4096,16384,65536]
           [--heads 8,16] [--dims 64,128] [--dtypes bf16,fp32] [--reps 30] [--budget-ms 1500]
           [--dense-max-len N] [--no-dense] [--warm-only] [--starling-csv FILE] [--csv FILE]
"""
import csv
import glob
import argparse
import os
import statistics
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import BlockMask, flex_attention

BLOCK = 64
TOL = {"fp32": (2e-5, 1e-4, 1e-5), "tf32": (3e-3, 3e-3, 1e-3), "bf16": (2e-2, 5e-3, 1e-2),
       "fp16": (5e-3, 2e-3, 2e-3)}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


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


def cuda_median_ms(fn, reps, warmup=2, budget_ms=1500.0):
    """Median of CUDA-event times; after the first timed launch, as many as fit about budget_ms (3 at least)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    planned = reps
    r = 0
    while r < planned:
        s = torch.cuda.Event(enable_timing=True)
        e = torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
        if r == 0:
            planned = int(max(3, min(reps, budget_ms / max(times[0], 1e-3))))
        r += 1
    return statistics.median(times)


def read_starling_csv(path):
    """(heads, dim, tokens, precision) -> [(variant, ms)] from CudaBenchmark --csv."""
    rows = {}
    if not path or not os.path.exists(path):
        return rows
    with open(path) as f:
        for r in csv.DictReader(f):
            key = (int(r["heads"]), int(r["dim"]), int(r["tokens"]), r["precision"])
            rows.setdefault(key, []).append((r["variant"], float(r["ms"])))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export", required=True)
    ap.add_argument("--lengths", default="4096,16384,65536")
    ap.add_argument("--heads", default="8")
    ap.add_argument("--dims", default="64")
    ap.add_argument("--dtypes", default="bf16,fp32")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--budget-ms", type=float, default=1500.0)
    ap.add_argument("--no-dense", action="store_true")
    ap.add_argument("--dense-max-len", type=int, default=1 << 30)
    ap.add_argument("--warm-only", action="store_true")
    ap.add_argument("--starling-csv")
    ap.add_argument("--csv")
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
    print(f"device: {torch.cuda.get_device_name()} torch {torch.__version__}", flush=True)
    if a.warm_only:
        return warm(a, flex)
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
        for prec, dt in (("fp32", torch.float32), ("tf32", torch.float32), ("bf16", torch.bfloat16),
                         ("fp16", torch.float16)):
            files = sorted(glob.glob(os.path.join(a.export, f"out_{n}_{prec}.npy"))
                           + glob.glob(os.path.join(a.export, f"out_{n}_{prec}_*.npy")))
            if not files:
                continue
            fx = flex(q32.to(dt), k32.to(dt), v32.to(dt), block_mask=bm).double()
            atol, rtol, rel = TOL[prec]
            outputs = [(f"starling {os.path.basename(sf)[len(f'out_{n}_{prec}'):-4].lstrip('_') or '-'}",
                        torch.from_numpy(np.load(sf)).cuda().double()) for sf in files]
            for label, got in outputs + [("flex", fx)]:
                err = (got - ref64).abs()
                ok_elem = bool((err <= atol + rtol * ref64.abs()).all())
                rel_norm = float((got - ref64).norm() / ref64.norm())
                within = ok_elem and rel_norm <= rel
                failures += 0 if within or label == "flex" else 1
                print(f"  N={n:<6} {prec:<5} {label:<24} vs float64: max |diff| {float(err.max()):.2e}, relative norm"
                      f" {rel_norm:.2e} -> {'within' if within else 'OUTSIDE'} {prec} tolerance")
            for label, got in outputs:
                d_sf = float((got - fx).abs().max())
                rel_sf = float((got - fx).norm() / fx.norm())
                print(f"  N={n:<6} {prec:<5} {label} vs flex: max |diff| {d_sf:.2e}, relative norm {rel_sf:.2e}")
    print()
    starling = read_starling_csv(a.starling_csv)
    print(f"{'impl':<6} {'prec':<5} {'heads':>5} {'D':>4} {'N':>7} {'ms':>9} {'TFLOP/s':>8}  flex time / Starling time per variant")
    out_csv = open(a.csv, "w", newline="") if a.csv else None
    writer = csv.writer(out_csv) if out_csv else None
    if writer:
        writer.writerow(["impl", "precision", "heads", "dim", "tokens", "ms", "tflops"])
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
                    dt = DTYPES[name]
                    q = torch.randn(1, h, n, d, device="cuda", dtype=dt)
                    k = torch.randn_like(q)
                    v = torch.randn_like(q)
                    try:
                        ms = cuda_median_ms(lambda: flex(q, k, v, block_mask=bm), a.reps, budget_ms=a.budget_ms)
                        ratios = "  ".join(f"{var} {ms / sms:.2f}x" for var, sms in starling.get((h, d, n, name), []))
                        print(f"{'flex':<6} {name:<5} {h:>5} {d:>4} {n:>7} {ms:>9.3f} {2 * 2 * d * pairs / ms / 1e9:>8.2f}"
                              f"  {ratios}", flush=True)
                        if writer:
                            writer.writerow(["flex", name, h, d, n, f"{ms:.4f}", f"{2 * 2 * d * pairs / ms / 1e9:.3f}"])
                    except Exception as e:  # report, keep going
                        print(f"{'flex':<6} {name:<5} {h:>5} {d:>4} {n:>7}  failed: {str(e).splitlines()[0][:200]}", flush=True)
                    if not a.no_dense and n <= a.dense_max_len:
                        try:
                            ms = cuda_median_ms(lambda: F.scaled_dot_product_attention(q, k, v), max(5, a.reps // 3),
                                                warmup=1, budget_ms=a.budget_ms)
                            dense_tflops = 2 * 2 * d * float(n) * n * h / ms / 1e9
                            ratios = "  ".join(f"{var} {ms / sms:.2f}x" for var, sms in starling.get((h, d, n, name), []))
                            print(f"{'sdpa':<6} {name:<5} {h:>5} {d:>4} {n:>7} {ms:>9.3f} {dense_tflops:>8.2f}  {ratios}",
                                  flush=True)
                            if writer:
                                writer.writerow(["sdpa", name, h, d, n, f"{ms:.4f}", f"{dense_tflops:.3f}"])
                        except Exception as e:
                            print(f"{'sdpa':<6} {name:<5} {h:>5} {d:>4} {n:>7}  failed: {str(e).splitlines()[0][:200]}", flush=True)
                    del q, k, v
                    torch.cuda.empty_cache()
                    if out_csv:
                        out_csv.flush()
    if out_csv:
        out_csv.close()
    return 1 if failures else 0


def warm(a, flex):
    """Compiles FlexAttention for every shape of the timing run (any layout of the right shape will do)."""
    import time
    for h in map(int, a.heads.split(",")):
        for d in map(int, a.dims.split(",")):
            for n in map(int, a.lengths.split(",")):
                nb = (n + BLOCK - 1) // BLOCK
                idx = np.arange(nb)
                band = (np.abs(idx[:, None] - idx[None, :]) <= 1) | (idx[None, :] == 0)
                layout = np.broadcast_to(band, (h, nb, nb)).astype(np.uint8)
                bm = block_mask_from_layout(layout, n)
                for name in a.dtypes.split(","):
                    t0 = time.time()
                    q = torch.randn(1, h, n, d, device="cuda", dtype=DTYPES[name])
                    try:
                        flex(q, q, q, block_mask=bm)
                        torch.cuda.synchronize()
                        print(f"warm: flex {name} H={h} D={d} N={n} compiled in {time.time() - t0:.1f} s", flush=True)
                    except Exception as e:
                        print(f"warm: flex {name} H={h} D={d} N={n} failed: {str(e).splitlines()[0][:200]}", flush=True)
                    del q
                    torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
