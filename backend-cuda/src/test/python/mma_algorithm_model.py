#!/usr/bin/env python3
# Model of mma_forward's control flow, run by hand (python3 with numpy; not part of the build): the
# key-tile cursors, the cp.async stage ring and commit-group accounting (asserts that every tile is
# landed before use and never overwritten before it is consumed), the clean-tile test, masking,
# the non-finite fix-up, the finish and merge policy, transliterated at tile granularity in
# float64 and compared with a dense oracle on BigBird-like layouts (causal, Nq != Nk, key and
# query lengths, block sizes, split units, 2/3 stages, NaN and +-inf in q, k, v).
import numpy as np, math, itertools
rng = np.random.default_rng(7)
INF = math.inf

def causal_key_end(i, Nq, Nk): return max(0, min(Nk, i + (Nk - Nq) + 1))

class P: pass

def run_cta(p, unit, tile_idx, b, h, stages, kBlockN, Q, K, V):
    """Returns (rows i, O rows, m (log2), l, seen) or partial, following the kernel."""
    qb, begin, end = unit
    i0 = qb * p.qBlock + tile_idx * 64
    rows = min(64, min(qb * p.qBlock + p.qBlock, p.Nq) - i0)
    if rows <= 0: return None
    qLen = min(p.Nq, p.qlens[b]); keyLen = min(p.Nk, p.klens[b])
    def row_key_end(i):
        e = keyLen
        return min(e, causal_key_end(i, p.Nq, p.Nk)) if p.causal else e
    lastRow = min(i0 + rows, qLen) - 1
    firstRowEnd = row_key_end(i0) if lastRow >= i0 else 0
    def key_begin(kb): return min(p.Nk, kb * p.kBlock)
    def key_end(kb): return min(p.Nk, (kb + 1) * p.kBlock)
    def next_tile(c):
        c[1] += kBlockN
        while c[1] >= c[2]:
            c[0] += 1
            if c[0] >= end: return False
            kb = p.keyBlocks[c[0]]
            c[1] = key_begin(kb)
            c[2] = min(key_end(kb), row_key_end(lastRow)) if lastRow >= i0 else c[1]
        return True
    # stage bookkeeping: stage_content[s] = (tile serial, group id); groups: list of (id, complete)
    groups = []; stage_content = {}
    serial_ld = 0
    def commit(entry): groups.append([entry, False])
    def wait(n):
        for g in groups[:max(0, len(groups) - n)]: g[1] = True
    commit(('Q',))
    ld = [begin - 1, 0, 0]; use = [begin - 1, 0, 0]
    for s in range(stages - 1):
        if next_tile(ld):
            stage_content[s] = (serial_ld, tuple(ld)); commit(('T', serial_ld, s)); serial_ld += 1
        else: commit(('E',))
    rowEnd = np.array([row_key_end(i0 + r) if (r < rows and i0 + r < qLen) else 0 for r in range(64)])
    D = Q.shape[-1]
    o = np.zeros((64, V.shape[-1])); m = np.full(64, -INF); l = np.zeros(64); seen = np.zeros(64, bool)
    stage = 0; loadStage = stages - 1; serial_use = 0
    qrows = np.zeros((64, D)); qrows[:rows] = Q[b, h, i0:i0 + rows]
    kvh = h // p.group
    while next_tile(use):
        c0 = use[1]; n = min(kBlockN, use[2] - c0)
        wait(1 if stages == 3 else 0)
        # the tile being consumed must be in `stage`, its group complete, and Q's group complete
        assert groups[0][1], "Q not landed"
        sc, cur = stage_content[stage]
        assert sc == serial_use and tuple(cur) == tuple(use), ("wrong tile in stage", sc, serial_use)
        g = [g for g in groups if g[0][0] == 'T' and g[0][1] == serial_use][0]
        assert g[1], "tile not landed"
        # barrier; then producer overwrites loadStage, which must not be the stage in use and must have been consumed
        if next_tile(ld):
            assert loadStage != stage
            if loadStage in stage_content: assert stage_content[loadStage][0] < serial_use, "overwrite before use"
            stage_content[loadStage] = (serial_ld, tuple(ld)); commit(('T', serial_ld, loadStage)); serial_ld += 1
        else: commit(('E',))
        # tile data (zero-filled past n)
        Kt = np.zeros((kBlockN, D)); Vt = np.zeros((kBlockN, V.shape[-1]))
        Kt[:n] = K[b, kvh, c0:c0 + n]; Vt[:n] = V[b, kvh, c0:c0 + n]
        clean = lastRow < i0 or firstRowEnd >= c0 + n
        bad = (not clean) and not np.isfinite(Vt).all()
        with np.errstate(invalid='ignore', over='ignore'):
            s = qrows @ Kt.T
        cnt = np.clip(np.minimum(n, rowEnd - c0), 0, None)
        x = s * p.scaleLog2
        mask = np.arange(kBlockN)[None, :] >= cnt[:, None]
        x[mask] = -INF
        mx = np.array([np.max(np.where(np.isnan(r), -INF, r)) for r in x])   # fmaxf ignores NaN
        mNew = np.maximum(m, mx)
        with np.errstate(invalid='ignore'):
            corr = np.where(m == mNew, 1.0, np.exp2(m - mNew))
        shift = np.where(mNew == -INF, 0.0, mNew)
        with np.errstate(invalid='ignore', over='ignore'):
            pm = np.exp2(x - shift[:, None])
        l = l * corr + pm.sum(1); m = mNew; seen |= cnt > 0
        with np.errstate(invalid='ignore'):
            o = o * corr[:, None]
        if bad:
            for r in range(64):
                for jj in range(n):
                    if jj < cnt[r]:
                        nf = ~np.isfinite(Vt[jj])
                        with np.errstate(invalid='ignore'):
                            o[r, nf] += pm[r, jj] * Vt[jj, nf]
            Vt = np.where(np.isfinite(Vt), Vt, 0.0)
        with np.errstate(invalid='ignore', over='ignore'):
            o = o + pm @ Vt
        stage = 0 if stage + 1 == stages else stage + 1
        loadStage = 0 if loadStage + 1 == stages else loadStage + 1
        serial_use += 1
    assert serial_use == serial_ld, "every loaded tile consumed"
    out = np.zeros((rows, V.shape[-1])); lse = np.zeros(rows)
    for r in range(rows):
        if not seen[r]: out[r] = 0; lse[r] = -INF
        elif not np.isfinite(m[r]): out[r] = np.nan; lse[r] = np.nan
        else:
            with np.errstate(invalid='ignore', divide='ignore'):
                out[r] = o[r] / l[r]; lse[r] = m[r] * math.log(2) + math.log(l[r]) if l[r] > 0 else (np.nan if np.isnan(l[r]) else -INF)
            if np.isnan(l[r]): lse[r] = np.nan
    return i0, out, lse

def merge(o1, l1, o2, l2):
    mm = l1 if (math.isnan(l1) or math.isnan(l2)) else max(l1, l2)
    if math.isnan(l1) or math.isnan(l2): return np.full_like(o1, np.nan), np.nan
    if mm == -INF: return np.zeros_like(o1), -INF
    if not math.isfinite(mm): return np.full_like(o1, np.nan), np.nan
    w1 = math.exp(l1 - mm); w2 = math.exp(l2 - mm); t = w1 + w2
    with np.errstate(invalid='ignore'):
        return (w1 / t) * o1 + (w2 / t) * o2, mm + math.log(t)

def kernel(p, Q, K, V, split, stages, kBlockN):
    out = np.zeros((p.B, p.Hq, p.Nq, V.shape[-1])); lse = np.zeros((p.B, p.Hq, p.Nq))
    tiles = (p.qBlock + 63) // 64
    for b in range(p.B):
        for h in range(p.Hq):
            for qb in range(len(p.rowStart) - 1):
                rb, re = p.rowStart[qb], p.rowStart[qb + 1]
                parts = [(qb, x, min(re, x + split)) for x in range(rb, re, split)] if re - rb > split else [(qb, rb, re)]
                for ti in range(tiles):
                    acc = None
                    for u in parts:
                        r = run_cta(p, u, ti, b, h, stages, kBlockN, Q, K, V)
                        if r is None: continue
                        i0, o_, l_ = r
                        if acc is None: acc = [o_, l_]
                        else:
                            for rr in range(len(l_)):
                                acc[0][rr], acc[1][rr] = merge(acc[0][rr], acc[1][rr], o_[rr], l_[rr])
                    if acc is None: continue
                    out[b, h, i0:i0 + len(acc[1])] = acc[0]; lse[b, h, i0:i0 + len(acc[1])] = acc[1]
    return out, lse

def oracle(p, Q, K, V):
    out = np.zeros((p.B, p.Hq, p.Nq, V.shape[-1])); lse = np.zeros((p.B, p.Hq, p.Nq))
    for b, h, i in itertools.product(range(p.B), range(p.Hq), range(p.Nq)):
        allowed = []
        if i < min(p.Nq, p.qlens[b]):
            qb = i // p.qBlock
            for kb in p.keyBlocks[p.rowStart[qb]:p.rowStart[qb + 1]]:
                for j in range(kb * p.kBlock, min(p.Nk, (kb + 1) * p.kBlock)):
                    if j < p.klens[b] and (not p.causal or j <= i + p.Nk - p.Nq): allowed.append(j)
        if not allowed: lse[b, h, i] = -INF; continue
        with np.errstate(invalid='ignore', over='ignore'):
            s = np.array([p.scale * np.dot(Q[b, h, i], K[b, h // p.group, j]) for j in allowed])
        mx = np.nan if np.isnan(s).any() else s.max()
        with np.errstate(invalid='ignore', over='ignore'):
            w = np.exp(s - mx); tot = w.sum()
            out[b, h, i] = (w[:, None] * V[b, h // p.group, allowed]).sum(0) / tot
            lse[b, h, i] = mx + math.log(tot) if tot > 0 else (np.nan if np.isnan(tot) else -INF)
        if not np.isfinite(mx): out[b, h, i] = np.nan; lse[b, h, i] = np.nan
    return out, lse

def same(a, b, tol=1e-9):
    return bool(np.all((np.isnan(a) & np.isnan(b)) | (a == b) | (np.abs(a - b) <= tol * (1 + np.abs(b)))))

def case(Nq, Nk, qBlock, kBlock, causal, klens, qlens, Hq=2, group=1, D=8, nonfinite=None, scale=None):
    p = P(); p.Nq, p.Nk, p.qBlock, p.kBlock, p.causal = Nq, Nk, qBlock, kBlock, causal
    p.B = len(klens); p.klens, p.qlens = klens, qlens; p.Hq, p.group = Hq, group
    p.scale = scale if scale is not None else 1 / math.sqrt(D); p.scaleLog2 = p.scale / math.log(2)
    nqb = (Nq + qBlock - 1) // qBlock; nkb = (Nk + kBlock - 1) // kBlock
    rs = [0]; kbs = []
    for qb in range(nqb):
        row = sorted(set([0, nkb - 1] + [x for x in range(qb - 1, qb + 2) if 0 <= x < nkb] + list(rng.choice(nkb, min(2, nkb), replace=False)))) if qb not in (0, nqb - 1) else list(range(nkb))
        kbs += row; rs.append(len(kbs))
    p.rowStart, p.keyBlocks = rs, kbs
    Q = rng.standard_normal((p.B, Hq, Nq, D)); K = rng.standard_normal((p.B, Hq // group, Nk, D)); V = rng.standard_normal((p.B, Hq // group, Nk, D))
    if nonfinite:
        t, val, pos = nonfinite
        [Q, K, V][t][pos] = val
    return p, Q, K, V

n = 0
for (Nq, Nk, qB, kB, causal, kl, ql) in [(300, 300, 64, 64, False, [300], [300]), (300, 300, 64, 64, True, [300], [300]),
                                        (130, 300, 64, 64, True, [300], [130]), (300, 130, 64, 64, True, [130], [300]),
                                        (300, 300, 64, 64, True, [300, 200, 0], [250, 300, 0]), (290, 290, 32, 32, False, [290], [290]),
                                        (700, 700, 128, 128, False, [700], [700]), (200, 330, 64, 64, False, [330], [200])]:
    for split in (10**9, 2, 1):
        for stages, kBlockN in ((2, 64), (3, 64), (2, 32), (3, 32)):
            p, Q, K, V = case(Nq, Nk, qB, kB, causal, kl, ql)
            got = kernel(p, Q, K, V, split, stages, kBlockN); ref = oracle(p, Q, K, V)
            assert same(got[0], ref[0]) and same(got[1], ref[1]), (Nq, Nk, qB, causal, split, stages, kBlockN)
            n += 1
print("finite cases ok:", n)
m = 0
for (Nq, Nk, causal, kl, ql) in [(300, 300, True, [300, 200], [300, 250]), (300, 300, False, [300, 200], [300, 300])]:
    for t in range(3):
        for val in (np.nan, INF, -INF):
            for pos in [(0, 0, 0, 1), (0, 0, 70, 2), (1, 0, 203, 3), (0, 1, 299, 0), (1, 0, 65, 5)]:
                if t == 0 and pos[2] >= Nq: continue
                for split in (10**9, 1):
                    p, Q, K, V = case(Nq, Nk, 64, 64, causal, kl, ql, nonfinite=(t, val, pos))
                    got = kernel(p, Q, K, V, split, 3, 64); ref = oracle(p, Q, K, V)
                    ok = same(got[0], ref[0]) and same(got[1], ref[1])
                    if not ok:
                        bad = np.argwhere(~((np.isnan(got[0]) & np.isnan(ref[0])) | (np.abs(got[0] - ref[0]) <= 1e-9 * (1 + np.abs(ref[0])))))
                        print("MISMATCH", "qkv"[t], val, pos, causal, split, bad[:3], got[0][tuple(bad[0])], ref[0][tuple(bad[0])])
                    m += ok
print("non-finite cases ok:", m)
