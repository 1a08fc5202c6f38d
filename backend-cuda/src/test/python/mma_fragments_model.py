#!/usr/bin/env python3
# Model of the mma kernels' register fragments, run by hand (python3 with numpy; not part of the
# build): emulates ldmatrix (.x4, .trans) and mma.sync m16n8k16 / m16n8k8 (tf32) fragment layouts as
# the PTX ISA defines them, drives them with the address formulas of mma_forward in
# sparse_attention.cu (qAddr, kOff, vOff, the P packing, the permuted tf32 keys), and checks
# S = Q K^T and O = P V, plus bank-conflict freedom of the padded rows. It checks the index
# arithmetic against this reading of the ISA, not the hardware: a GPU run is still needed.
import numpy as np
rng = np.random.default_rng(1)

def ldsm_x4(mem, addrs, es, trans=False):
    """mem: dict byte-address -> element value (element of es bytes); addrs[lane] row address.
    Returns regs[lane][m] = (lo, hi) element pair (b16 view; for es=4 one float = 2 b16 -> return the float)."""
    regs = [[None]*4 for _ in range(32)]
    for m in range(4):
        rows = [addrs[8*m + r] for r in range(8)]
        for l in range(32):
            g, t = l // 4, l % 4
            if es == 2:
                if not trans:
                    base = rows[g]
                    regs[l][m] = (mem[base + 2*(2*t)], mem[base + 2*(2*t+1)])
                else:
                    regs[l][m] = (mem[rows[2*t] + 2*g], mem[rows[2*t+1] + 2*g])
            else:
                assert not trans
                base = rows[g]
                regs[l][m] = mem[base + 4*t]   # b16 cols 2t,2t+1 = bytes 4t..4t+3 = one float
    return regs

def store_tile(mem, base, tile, row_bytes, es):
    for r in range(tile.shape[0]):
        for c in range(tile.shape[1]):
            mem[base + r*row_bytes + es*c] = tile[r, c]

def run(es, D, blockN):
    row_bytes = D*es + 16
    mem = {}
    Q = rng.standard_normal((64, D)); K = rng.standard_normal((blockN, D)); V = rng.standard_normal((blockN, D))
    sQ, sK, sV = 0, 100000, 200000
    store_tile(mem, sQ, Q, row_bytes, es); store_tile(mem, sK, K, row_bytes, es); store_tile(mem, sV, V, row_bytes, es)
    warp = 1
    nT, dT = blockN // 8, D // 8
    ksteps = D*es // 32
    # per lane accumulators s[lane][j][4]
    S = np.zeros((32, nT, 4)); O = np.zeros((32, dT, 4))
    for ks in range(ksteps):
        qaddr = [sQ + (warp*16 + (l & 15))*row_bytes + (l >> 4)*16 + ks*32 for l in range(32)]
        A = ldsm_x4(mem, qaddr, es)
        for j in range(nT // 2):
            kaddr = [sK + ((l & 7) + ((l >> 4) << 3))*row_bytes + ((l >> 3) & 1)*16 + j*16*row_bytes + ks*32 for l in range(32)]
            B = ldsm_x4(mem, kaddr, es)
            # execute mma for tiles 2j (b0=B[.][0], b1=B[.][1]) and 2j+1 (B[.][2], B[.][3])
            for tile, (i0, i1) in ((2*j, (0, 1)), (2*j+1, (2, 3))):
                # reconstruct A (16 x k) and B (k x 8) from the fragments, as the hardware defines them
                k = 16 if es == 2 else 8
                Am = np.full((16, k), np.nan); Bm = np.full((k, 8), np.nan)
                for l in range(32):
                    g, t = l // 4, l % 4
                    if es == 2:
                        Am[g, 2*t:2*t+2] = A[l][0]; Am[g+8, 2*t:2*t+2] = A[l][1]
                        Am[g, 2*t+8:2*t+10] = A[l][2]; Am[g+8, 2*t+8:2*t+10] = A[l][3]
                        Bm[2*t:2*t+2, g] = B[l][i0]; Bm[2*t+8:2*t+10, g] = B[l][i1]
                    else:
                        Am[g, t] = A[l][0]; Am[g+8, t] = A[l][1]; Am[g, t+4] = A[l][2]; Am[g+8, t+4] = A[l][3]
                        Bm[t, g] = B[l][i0]; Bm[t+4, g] = B[l][i1]
                assert not np.isnan(Am).any() and not np.isnan(Bm).any()
                C = Am @ Bm
                for l in range(32):
                    g, t = l // 4, l % 4
                    S[l, tile] += [C[g, 2*t], C[g, 2*t+1], C[g+8, 2*t], C[g+8, 2*t+1]]
    # check S against Q K^T for this warp's rows
    ref = Q[warp*16:warp*16+16] @ K.T
    for l in range(32):
        g, t = l // 4, l % 4
        for j in range(nT):
            assert np.allclose(S[l, j], [ref[g, 8*j+2*t], ref[g, 8*j+2*t+1], ref[g+8, 8*j+2*t], ref[g+8, 8*j+2*t+1]]), (l, j)
    # P: use S values as P (any numbers), O = P V
    P = np.zeros((16, blockN))
    for l in range(32):
        g, t = l // 4, l % 4
        for j in range(nT):
            P[g, 8*j+2*t], P[g, 8*j+2*t+1], P[g+8, 8*j+2*t], P[g+8, 8*j+2*t+1] = S[l, j]
    if es == 2:
        for kk in range(blockN // 16):
            for dp in range(dT // 2):
                vaddr = [sV + ((l & 7) + ((l >> 3) & 1)*8)*row_bytes + (l >> 4)*16 + kk*16*row_bytes + dp*32 for l in range(32)]
                B = ldsm_x4(mem, vaddr, es, trans=True)
                for tile, (i0, i1) in ((2*dp, (0, 1)), (2*dp+1, (2, 3))):
                    Am = np.full((16, 16), np.nan); Bm = np.full((16, 8), np.nan)
                    for l in range(32):
                        g, t = l // 4, l % 4
                        a = [(S[l, 2*kk][0], S[l, 2*kk][1]), (S[l, 2*kk][2], S[l, 2*kk][3]),
                             (S[l, 2*kk+1][0], S[l, 2*kk+1][1]), (S[l, 2*kk+1][2], S[l, 2*kk+1][3])]
                        Am[g, 2*t:2*t+2] = a[0]; Am[g+8, 2*t:2*t+2] = a[1]; Am[g, 2*t+8:2*t+10] = a[2]; Am[g+8, 2*t+8:2*t+10] = a[3]
                        Bm[2*t:2*t+2, g] = B[l][i0]; Bm[2*t+8:2*t+10, g] = B[l][i1]
                    assert not np.isnan(Am).any() and not np.isnan(Bm).any()
                    C = Am @ Bm
                    for l in range(32):
                        g, t = l // 4, l % 4
                        O[l, tile] += [C[g, 2*t], C[g, 2*t+1], C[g+8, 2*t], C[g+8, 2*t+1]]
    else:
        ldv = row_bytes // 4
        for j in range(nT):
            for dt in range(dT):
                Am = np.full((16, 8), np.nan); Bm = np.full((8, 8), np.nan)
                for l in range(32):
                    g, t = l // 4, l % 4
                    a = [S[l, j][0], S[l, j][2], S[l, j][1], S[l, j][3]]
                    Am[g, t] = a[0]; Am[g+8, t] = a[1]; Am[g, t+4] = a[2]; Am[g+8, t+4] = a[3]
                    # v0 = vs + (j*8 + 2t)*ldv + g ; b0 = v0[dt*8], b1 = v0[ldv + dt*8]
                    idx0 = (j*8 + 2*t)*ldv + g + dt*8; idx1 = idx0 + ldv
                    Bm[t, g] = mem[sV + 4*idx0]; Bm[t+4, g] = mem[sV + 4*idx1]
                    # bank check pieces collected below
                C = Am @ Bm
                for l in range(32):
                    g, t = l // 4, l % 4
                    O[l, dt] += [C[g, 2*t], C[g, 2*t+1], C[g+8, 2*t], C[g+8, 2*t+1]]
        # bank conflicts of the scalar V loads: 32 lanes, distinct banks
        for j in range(nT):
            banks0 = {(((j*8 + 2*(l % 4))*ldv + l // 4) % 32) for l in range(32)}
            banks1 = {(((j*8 + 2*(l % 4) + 1)*ldv + l // 4) % 32) for l in range(32)}
            assert len(banks0) == 32 and len(banks1) == 32, "bank conflict"
    refO = P @ V
    for l in range(32):
        g, t = l // 4, l % 4
        for dt in range(dT):
            assert np.allclose(O[l, dt], [refO[g, 8*dt+2*t], refO[g, 8*dt+2*t+1], refO[g+8, 8*dt+2*t], refO[g+8, 8*dt+2*t+1]]), (l, dt)
    # ldmatrix bank check: each 8-address phase hits distinct 16-byte chunks mod 8 (128-byte lines)
    for m in range(4):
        chunks = {((((l & 7) + ((l >> 4) << 3))*row_bytes + ((l >> 3) & 1)*16) // 16) % 8 for l in range(8*m, 8*m+8)}
        assert len(chunks) == 8, "ldmatrix bank conflict"
    print(f"ok: es={es} D={D} blockN={blockN}: S = Q K^T and O = P V through the fragments")

for es, D, bn in ((2, 64, 64), (2, 128, 64), (4, 64, 64), (4, 128, 32)):
    run(es, D, bn)
