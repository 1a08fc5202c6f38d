#!/usr/bin/env python3
# Model of the backward kernels' control flow (starling_bwd_delta, starling_bwd_dq,
# starling_bwd_dkdv), run by hand (python3 with numpy; not part of the build, and no substitute
# for a GPU run): the whole-row units and 64-row tiles of dQ, the CTA-uniform key range of a tile
# (its last valid row), key tiles of tileK keys, each row's readable prefix; the packed columns
# (BackwardColumns: starts per head layout and key block, query blocks concatenated), 64-key tiles
# of a key block, the group's query heads in order, chunks of bwdRows query rows, the per-row key
# counts and the skip of empty rows (LSE = -inf). Transliterated in float64 at tile granularity and
# compared with dense masked gradients on random layouts: causal with Nq != Nk, key and query
# lengths (zeros included), tails, block sizes 32/64/128, GQA, empty rows, rows with dO = 0.
import math
import numpy as np

rng = np.random.default_rng(15)
NAN = math.nan


def causal_key_end(i, Nq, Nk):
    return max(0, min(Nk, i + (Nk - Nq) + 1))


class Problem:
    pass


def make_case(B, Hq, Hkv, Nq, Nk, D, Dv, qBlock, kBlock, causal, shared, density, klens, qlens):
    p = Problem()
    p.B, p.Hq, p.Hkv, p.Nq, p.Nk, p.D, p.Dv = B, Hq, Hkv, Nq, Nk, D, Dv
    p.group = Hq // Hkv
    p.qBlock, p.kBlock, p.causal = qBlock, kBlock, causal
    p.nqb, p.nkb = -(-Nq // qBlock), -(-Nk // kBlock)
    heads = 1 if shared else Hq
    p.headLayouts = heads
    # CSR per head layout: random allowed blocks, some rows empty.
    p.rows = []
    for hl in range(heads):
        rows = []
        for qb in range(p.nqb):
            kbs = sorted(kb for kb in range(p.nkb) if rng.random() < density)
            rows.append(kbs)
        p.rows.append(rows)
    p.klens, p.qlens = klens, qlens
    p.scale = 1.0 / math.sqrt(D)
    return p


def key_length(p, b): return min(p.Nk, p.klens[b])
def query_length(p, b): return min(p.Nq, p.qlens[b])


def row_key_end(p, b, i):
    e = key_length(p, b)
    return min(e, causal_key_end(i, p.Nq, p.Nk)) if p.causal else e


def key_begin(p, kb): return min(p.Nk, kb * p.kBlock)
def key_end(p, kb): return min(p.Nk, (kb + 1) * p.kBlock)
def block_key_end(p, b, i, kb): return min(key_end(p, kb), row_key_end(p, b, i))
def hl_of(p, h): return 0 if p.headLayouts == 1 else h


def dense(p, Q, K, V, dO):
    """float64 dense masked attention, its LSE and its gradients (DESIGN section 4)."""
    O = np.zeros((p.B, p.Hq, p.Nq, p.Dv)); L = np.full((p.B, p.Hq, p.Nq), -math.inf)
    dQ = np.zeros_like(Q); dK = np.zeros_like(K); dV = np.zeros_like(V)
    for b in range(p.B):
        for h in range(p.Hq):
            kvh = h // p.group
            A = np.zeros((p.Nq, p.Nk), bool)
            for qb in range(p.nqb):
                for kb in p.rows[hl_of(p, h)][qb]:
                    for i in range(qb * p.qBlock, min(p.Nq, (qb + 1) * p.qBlock)):
                        if i < query_length(p, b):
                            A[i, key_begin(p, kb):block_key_end(p, b, i, kb)] = True
            S = np.where(A, p.scale * Q[b, h] @ K[b, kvh].T, -np.inf)
            for i in range(p.Nq):
                if A[i].any():
                    m = S[i].max(); e = np.exp(S[i] - m); L[b, h, i] = m + math.log(e.sum())
                    O[b, h, i] = (e / e.sum()) @ V[b, kvh]
            P = np.where(A, np.exp(S - np.where(np.isfinite(L[b, h]), L[b, h], 0)[:, None]), 0.0)
            Dl = (dO[b, h] * O[b, h]).sum(1)
            dS = P * (dO[b, h] @ V[b, kvh].T - Dl[:, None])
            dQ[b, h] = p.scale * dS @ K[b, kvh]
            dK[b, kvh] += p.scale * dS.T @ Q[b, h]
            dV[b, kvh] += P.T @ dO[b, h]
    return O, L, dQ, dK, dV


def pack_columns(p):
    """BackwardColumns.packStarts / packQueryBlocks."""
    starts, qbs = [], []
    for hl in range(p.headLayouts):
        col = [[] for _ in range(p.nkb)]
        for qb in range(p.nqb):
            for kb in p.rows[hl][qb]:
                col[kb].append(qb)
        for kb in range(p.nkb):
            starts.append(len(qbs)); qbs.extend(col[kb])
        starts.append(len(qbs))
    return starts, qbs


def kernels(p, Q, K, V, O, L, dO, tileK, R):
    delta = np.zeros((p.B, p.Hq, p.Nq))
    for b in range(p.B):   # starling_bwd_delta
        for h in range(p.Hq):
            for i in range(p.Nq):
                skip = i >= query_length(p, b) or L[b, h, i] == -math.inf
                delta[b, h, i] = 0.0 if skip else (dO[b, h, i] * O[b, h, i]).sum()
    dQ = np.full_like(Q, 12345.0); dK = np.full_like(K, 12345.0); dV = np.full_like(V, 12345.0)
    Qs = Q * p.scale
    for b in range(p.B):   # starling_bwd_dq: whole-row units, 64-row tiles
        for h in range(p.Hq):
            kvh = h // p.group
            for qb in range(p.nqb):
                for t0 in range(qb * p.qBlock, min(p.Nq, (qb + 1) * p.qBlock), 64):
                    rows = min(64, min((qb + 1) * p.qBlock, p.Nq) - t0)
                    qLen = query_length(p, b)
                    lastRow = min(t0 + rows, qLen) - 1
                    acc = np.zeros((rows, p.D)); live = np.zeros(rows, bool); rowEnd = np.zeros(rows, int)
                    for r in range(rows):
                        i = t0 + r
                        valid = i < qLen
                        live[r] = valid and L[b, h, i] != -math.inf
                        rowEnd[r] = row_key_end(p, b, i) if live[r] else 0
                    for kb in p.rows[hl_of(p, h)][qb]:
                        j0 = key_begin(p, kb)
                        jEnd = block_key_end(p, b, lastRow, kb) if lastRow >= t0 else j0
                        for c0 in range(j0, jEnd, tileK):
                            n = min(tileK, jEnd - c0)
                            for r in range(rows):
                                cnt = max(0, min(n, rowEnd[r] - c0))
                                if cnt == 0:
                                    continue
                                i = t0 + r
                                s = Qs[b, h, i] @ K[b, kvh, c0:c0 + cnt].T
                                pv = np.exp(s - L[b, h, i])
                                dp = dO[b, h, i] @ V[b, kvh, c0:c0 + cnt].T
                                ds = pv * (dp - delta[b, h, i])
                                acc[r] += ds @ K[b, kvh, c0:c0 + cnt]
                    for r in range(rows):
                        dQ[b, h, t0 + r] = p.scale * acc[r] if live[r] else 0.0
    starts, qbs = pack_columns(p)
    for b in range(p.B):   # starling_bwd_dkdv: 64-key tiles of each key block
        for kvh in range(p.Hkv):
            for kb in range(p.nkb):
                for kt in range(-(-p.kBlock // 64)):
                    j0 = key_begin(p, kb) + kt * 64
                    nk = min(64, key_end(p, kb) - j0)
                    if nk <= 0:
                        continue
                    dk = np.zeros((nk, p.D)); dv = np.zeros((nk, p.Dv))
                    for h in range(kvh * p.group, (kvh + 1) * p.group):
                        base = hl_of(p, h) * (p.nkb + 1)
                        for at in range(starts[base + kb], starts[base + kb + 1]):
                            qb = qbs[at]
                            rowsEnd = min(min((qb + 1) * p.qBlock, p.Nq), query_length(p, b))
                            for i0 in range(qb * p.qBlock, rowsEnd, R):
                                for i in range(i0, min(i0 + R, rowsEnd)):
                                    d = delta[b, h, i]
                                    cnt = 0 if L[b, h, i] == -math.inf else max(0, min(nk, block_key_end(p, b, i, kb) - j0))
                                    if cnt == 0:
                                        continue
                                    s = Qs[b, h, i] @ K[b, kvh, j0:j0 + cnt].T
                                    pv = np.exp(s - L[b, h, i])
                                    ds = pv * (dO[b, h, i] @ V[b, kvh, j0:j0 + cnt].T - d)
                                    dv[:cnt] += np.outer(pv, dO[b, h, i])
                                    dk[:cnt] += np.outer(ds, Qs[b, h, i])
                    dK[b, kvh, j0:j0 + nk] = dk; dV[b, kvh, j0:j0 + nk] = dv
    return dQ, dK, dV


def check(name, p, tileK, R):
    Q = rng.standard_normal((p.B, p.Hq, p.Nq, p.D)); K = rng.standard_normal((p.B, p.Hkv, p.Nk, p.D))
    V = rng.standard_normal((p.B, p.Hkv, p.Nk, p.Dv)); dO = rng.standard_normal((p.B, p.Hq, p.Nq, p.Dv))
    dO[0, 0, min(3, p.Nq - 1)] = 0.0   # a masked loss row
    O, L, rq, rk, rv = dense(p, Q, K, V, dO)
    gq, gk, gv = kernels(p, Q, K, V, O, L, dO, tileK, R)
    worst = max(np.abs(gq - rq).max(), np.abs(gk - rk).max(), np.abs(gv - rv).max())
    ok = worst < 1e-9
    print(f"{'ok  ' if ok else 'FAIL'} {name}: tileK={tileK} rows={R}, max |diff| {worst:.1e}")
    return ok


cases = [
    ("bigbird-like, GQA, per-head layouts", make_case(2, 4, 2, 200, 200, 16, 8, 64, 64, False, False, 0.4, [200, 150], [200, 130]), 64, 64),
    ("causal, Nq < Nk, tails, blocks 32", make_case(1, 2, 1, 70, 130, 8, 8, 32, 32, True, True, 0.7, [130], [70]), 16, 16),
    ("causal, Nq > Nk, block 128 (two tiles)", make_case(1, 3, 3, 300, 170, 8, 12, 128, 128, True, False, 0.6, [170], [290]), 32, 32),
    ("key length 0, query length 0", make_case(2, 2, 1, 96, 96, 8, 8, 32, 64, False, True, 0.8, [0, 96], [96, 0]), 64, 16),
    ("MQA, mixed blocks 64/32", make_case(1, 4, 1, 150, 110, 12, 8, 64, 32, True, False, 0.5, [100], [140]), 64, 32),
]
results = [check(*c) for c in cases]
print("all ok" if all(results) else "FAILED")
raise SystemExit(0 if all(results) else 1)
