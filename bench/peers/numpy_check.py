#!/usr/bin/env python3
"""Checks `starling run` against NumPy: dense masked attention in float64 over the block layout
that `starling pattern --npy` writes, with causal, key/query lengths, GQA, Nq != Nk and Dv != D;
and the backward pass (`run --dout ... --dq --dk --dv`) against NumPy's gradients of the same.

Usage: python3 bench/peers/numpy_check.py [path/to/starling]   (exit 0 = all agree, 1 = a mismatch)
Needs only NumPy. Tolerances are DESIGN section 6, fp32.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

STARLING = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "starling")
ATOL, RTOL, REL_NORM, LSE_ATOL, LSE_RTOL = 2e-5, 1e-4, 1e-5, 1e-4, 1e-6
GRAD_ATOL, GRAD_RTOL = 1e-4, 5e-4  # the fp32 gradient row of docs/design.md section 6

CASES = [
    dict(name="bigbird", spec="bigbird(block=16, window=3, global=2, random=2, seed=4)", B=1, Hq=2, Hkv=2, Nq=160, Nk=160, D=32, Dv=32),
    dict(name="bigbird tail, gqa, dv!=d, nq!=nk", spec="bigbird(block=16, window=3, global=2, random=3, seed=1)", B=2, Hq=4, Hkv=2, Nq=150, Nk=230, D=32, Dv=24),
    dict(name="causal with lengths", spec="bigbird(block=16, window=3, global=2, random=2, seed=9)", B=2, Hq=2, Hkv=1, Nq=120, Nk=150, D=16, Dv=16,
         causal=True, key_lengths=[150, 61], query_lengths=[120, 0]),
    dict(name="longformer scale", spec="longformer(block=32, window=3, global=[0, -1])", B=1, Hq=2, Hkv=2, Nq=200, Nk=200, D=16, Dv=16, scale=0.3),
    # The layout and element type of the files: [B, N, H, D] with --layout bshd, float16 '<f2', bfloat16 bits '<u2'.
    dict(name="bshd files, gqa, nq!=nk", spec="bigbird(block=16, window=3, global=2, random=3, seed=1)", B=2, Hq=4, Hkv=2, Nq=150, Nk=230, D=32, Dv=24,
         layout="bshd"),
    dict(name="float16 inputs", spec="bigbird(block=16, window=3, global=2, random=2, seed=4)", B=1, Hq=2, Hkv=2, Nq=160, Nk=160, D=32, Dv=32,
         dtype="float16"),
    dict(name="bfloat16 inputs, bshd", spec="bigbird(block=16, window=3, global=2, random=2, seed=5)", B=1, Hq=2, Hkv=1, Nq=96, Nk=96, D=16, Dv=16,
         dtype="bfloat16", layout="bshd"),
]


def to_bf16_bits(a):
    """float32 -> bfloat16 bit patterns (uint16), round to nearest even (NaN kept quiet)."""
    x = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((x + 0x7FFF + ((x >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(a), np.uint16(0x7FC0), r)


def from_bf16_bits(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def stored(a, dtype):
    """(what goes into the file, the float values Starling reads from it)"""
    if dtype == "float16":
        h = a.astype(np.float16)
        return h, h.astype(np.float32)
    if dtype == "bfloat16":
        b = to_bf16_bits(a)
        return b, from_bf16_bits(b)
    return a, a


def run(*args):
    r = subprocess.run([STARLING, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"starling {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def dense_masked(q, k, v, layout, block, causal, scale, key_lengths, query_lengths, dout=None):
    B, Hq, Nq, D = q.shape
    Hkv, Nk = k.shape[1], k.shape[2]
    group = Hq // Hkv
    out = np.zeros((B, Hq, Nq, v.shape[3]))
    lse = np.full((B, Hq, Nq), -np.inf)
    dq, dk, dv = np.zeros(q.shape), np.zeros(k.shape), np.zeros(v.shape)
    i = np.arange(Nq)[:, None]
    j = np.arange(Nk)[None, :]
    for b in range(B):
        for h in range(Hq):
            allowed = layout[h][np.ix_(np.arange(Nq) // block, np.arange(Nk) // block)].astype(bool)
            if causal:
                allowed &= j <= i + (Nk - Nq)
            allowed &= j < key_lengths[b]
            allowed &= i < query_lengths[b]
            s = scale * (q[b, h].astype(np.float64) @ k[b, h // group].astype(np.float64).T)
            s = np.where(allowed, s, -np.inf)
            rows = allowed.any(axis=1)
            m = np.where(rows, s.max(axis=1), 0.0)
            p = np.where(allowed, np.exp(s - m[:, None]), 0.0)
            l = p.sum(axis=1)
            out[b, h][rows] = (p[rows] @ v[b, h // group].astype(np.float64)) / l[rows, None]
            lse[b, h][rows] = m[rows] + np.log(l[rows])
            if dout is not None:
                prob = np.where(rows[:, None], p / np.where(l > 0, l, 1)[:, None], 0.0)
                g = dout[b, h].astype(np.float64)
                delta = (g * out[b, h]).sum(axis=1)
                ds = prob * (g @ v[b, h // group].astype(np.float64).T - delta[:, None])
                dq[b, h] = scale * ds @ k[b, h // group].astype(np.float64)
                dk[b, h // group] += scale * ds.T @ q[b, h].astype(np.float64)
                dv[b, h // group] += prob.T @ g
    if dout is not None:
        return out, lse, (dq, dk, dv)
    return out, lse


def exchange_mask(tmp, fmt, qb, kb):
    """The block mask [H, Qb, Kb] that `pattern --export FMT` arrays describe, rebuilt with NumPy alone."""
    p = os.path.join(tmp, fmt)
    if fmt == "flex":
        mask = None
        for num, idx in (("kv_num_blocks", "kv_indices"), ("full_kv_num_blocks", "full_kv_indices")):
            n = np.load(f"{p}.{num}.npy")[0]
            ind = np.load(f"{p}.{idx}.npy")[0]
            m = np.zeros((n.shape[0], qb, kb), dtype=np.uint8)
            for h in range(n.shape[0]):
                for r in range(qb):
                    m[h, r, ind[h, r, :n[h, r]]] += 1
            mask = m if mask is None else mask + m
        return mask
    ptr = np.load(f"{p}.{'indptr' if fmt == 'bsr' else 'block_row_indices'}.npy")
    ind = np.load(f"{p}.{'indices' if fmt == 'bsr' else 'block_col_indices'}.npy")
    m = np.zeros((ptr.shape[0], qb, kb), dtype=np.uint8)
    for h in range(ptr.shape[0]):
        for r in range(qb):
            m[h, r, ind[h, ptr[h, r]:ptr[h, r + 1]]] += 1
    return m


def main():
    rng = np.random.default_rng(20261128)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for c in CASES:
            q = rng.standard_normal((c["B"], c["Hq"], c["Nq"], c["D"]), dtype=np.float32)
            k = rng.standard_normal((c["B"], c["Hkv"], c["Nk"], c["D"]), dtype=np.float32)
            v = rng.standard_normal((c["B"], c["Hkv"], c["Nk"], c["Dv"]), dtype=np.float32)
            dout = rng.standard_normal((c["B"], c["Hq"], c["Nq"], c["Dv"]), dtype=np.float32)
            bshd = c.get("layout", "bhsd") == "bshd"
            dtype = c.get("dtype", "float32")
            for n in ("q", "k", "v", "dout"):
                a = {"q": q, "k": k, "v": v, "dout": dout}[n]
                data, values = stored(a, dtype)
                np.save(os.path.join(tmp, n + ".npy"), data.transpose(0, 2, 1, 3) if bshd else data)
                if n == "q":
                    q = values
                elif n == "k":
                    k = values
                elif n == "v":
                    v = values
                else:
                    dout = values
            causal = c.get("causal", False)
            extra = ["--causal"] if causal else []
            layout_file = os.path.join(tmp, "layout.npy")
            run("pattern", c["spec"], "--seq", c["Nq"], "--kv-seq", c["Nk"], "--heads", c["Hq"], "--npy", layout_file, *extra)
            kl = c.get("key_lengths", [c["Nk"]] * c["B"])
            ql = c.get("query_lengths", [c["Nq"]] * c["B"])
            args = ["run", "--q", f"{tmp}/q.npy", "--k", f"{tmp}/k.npy", "--v", f"{tmp}/v.npy", "--pattern", c["spec"],
                    "--out", f"{tmp}/out.npy", "--lse", f"{tmp}/lse.npy", *extra]
            if bshd:
                args += ["--layout", "bshd"]
            if "key_lengths" in c:
                args += ["--key-lengths", ",".join(map(str, kl))]
            if "query_lengths" in c:
                args += ["--query-lengths", ",".join(map(str, ql))]
            scale = c.get("scale", 1 / np.sqrt(c["D"]))
            if "scale" in c:
                args += ["--scale", c["scale"]]
            # The JVM's own incubator notice may come first; Starling's first line names the interpretation.
            first = [l for l in run(*args).stderr.splitlines() if not l.startswith("WARNING: Using incubator modules")][0]
            want = f"starling: q: {tmp}/q.npy [{c['B']}, " + (f"{c['Nq']}, {c['Hq']}" if bshd else f"{c['Hq']}, {c['Nq']}") \
                + f", {c['D']}] read as {'bshd' if bshd else 'bhsd'}"
            if not first.startswith(want) or {"float16": "float16", "bfloat16": "bfloat16"}.get(dtype, "float32") not in first:
                failures += 1
                print(f"FAIL {c['name']}: first stderr line {first!r} does not start with {want!r} and name {dtype}")
            run(*[a if a != f"{tmp}/out.npy" else f"{tmp}/out2.npy" for a in args if a not in ("--lse", f"{tmp}/lse.npy")],
                "--dout", f"{tmp}/dout.npy", "--dq", f"{tmp}/dq.npy", "--dk", f"{tmp}/dk.npy", "--dv", f"{tmp}/dv.npy")
            layout = np.load(layout_file)
            exchange_ok = True
            if "counts" not in c["spec"] and not c["spec"].startswith("bigbird_"):
                for fmt in ("flex", "bsr", "ort"):
                    run("pattern", c["spec"], "--seq", c["Nq"], "--kv-seq", c["Nk"], "--heads", c["Hq"], "--export", fmt,
                        "--to", os.path.join(tmp, fmt), *extra)
                    rebuilt = exchange_mask(tmp, fmt, layout.shape[1], layout.shape[2])
                    if not np.array_equal(rebuilt, layout.astype(np.uint8)):
                        exchange_ok = False
                        print(f"FAIL {c['name']}: --export {fmt} describes other blocks than --npy")
            block = int(c["spec"].split("block=")[1].split(",")[0].split(")")[0])
            ref, ref_lse, grads = dense_masked(q, k, v, layout, block, causal, np.float32(scale), kl, ql, dout)
            back = (lambda a: a.transpose(0, 2, 1, 3)) if bshd else (lambda a: a)
            got = back(np.load(f"{tmp}/out.npy")).astype(np.float64)
            got_lse = np.load(f"{tmp}/lse.npy").astype(np.float64)
            elem = np.abs(got - ref) <= ATOL + RTOL * np.abs(ref)
            rel = np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-300)
            fin = np.isfinite(ref_lse)
            lse_ok = np.array_equal(np.isfinite(got_lse), fin) and np.all(
                np.abs(got_lse[fin] - ref_lse[fin]) <= LSE_ATOL + LSE_RTOL * np.abs(ref_lse[fin]))
            ok = bool(elem.all()) and rel <= REL_NORM and lse_ok and layout.shape == (c["Hq"], -(-c["Nq"] // block), -(-c["Nk"] // block))
            grad_worst = 0.0
            for name, want in zip(("dq", "dk", "dv"), grads):
                have = back(np.load(f"{tmp}/{name}.npy")).astype(np.float64)
                ok = ok and have.shape == want.shape and bool(np.all(np.abs(have - want) <= GRAD_ATOL + GRAD_RTOL * np.abs(want)))
                grad_worst = max(grad_worst, float(np.abs(have - want).max()))
            ok = ok and exchange_ok
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {c['name']}: max |diff| {np.abs(got - ref).max():.2e}, relative norm {rel:.2e}, "
                  f"gradients max |diff| {grad_worst:.2e}, layout {layout.shape} density {layout.mean():.3f}")
    print(f"{len(CASES) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
