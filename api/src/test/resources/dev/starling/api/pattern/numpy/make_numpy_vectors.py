#!/usr/bin/env python3
"""Expected values for Starling's NumPy-legacy RNG and faithful BigBird draws (issue 24).

Run once with python3 + NumPy (no other package); it rewrites, next to itself:
  legacy_random.txt  - raw MT19937 outputs and np.random.permutation(n) results after
                       np.random.seed(seed), the stream continuing across calls;
  bigbird_draws.txt  - the random key blocks ("rand_attn") that Hugging Face's and Google's
                       BigBird draw, per head, for several lengths, seeds and block sizes.

transformers and the Google BigBird code are NOT installed here. The draw rules below are a
Python reference written for Starling from reading Hugging Face's
`transformers/models/big_bird/modeling_big_bird.py` (BigBirdBlockSparseAttention:
`_bigbird_block_rand_mask`, `_bigbird_block_rand_mask_with_head`, `_get_rand_attn_plan`,
`_get_single_block_row_attention`, and `bigbird_block_sparse_attention`, which picks between them)
and Google's `bigbird/core/attention.py` (`bigbird_block_rand_mask`, `..._with_head`,
`get_rand_attn_plan`, `MultiHeadedAttentionLayer.generate_rand_attn_list`). They use NumPy's own
legacy global RNG, as both libraries do. The captured fixtures (shared/fixtures/hf-bigbird, copied
in part to ../hf-bigbird) are the ground truth this reference is checked against: see check_fixtures.

Line formats (whitespace separated):
  raw SEED COUNT v0 v1 ...                    first COUNT 32-bit outputs after np.random.seed(SEED)
  perm SEED N p0 p1 ...                       np.random.permutation(N), in file order per SEED
                                              (the stream continues from the previous perm line
                                              of the same SEED; a new SEED starts a fresh seed)
  draw LIB SEQ BLOCK RANDOM HEADS SEED MAXPOS then HEADS lines "head H v..." (rows 1..n-2, RANDOM
                                              values per row), or one line "error MESSAGE" where
                                              the Python code itself fails (NumPy cannot broadcast)
"""
import os
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------- the draw rules (reference)

def rand_mask_paper(from_len, to_len, block, r, last_idx):
    """Both libraries' `bigbird_block_rand_mask` (training draw): one head, rows 1 .. n-2."""
    nb = from_len // block
    rand_attn = np.zeros((nb - 2, r), dtype=np.int32)
    middle = np.arange(1, to_len // block - 1, dtype=np.int32)
    last = to_len // block - 1
    if last_idx > 2 * block:
        last = last_idx // block - 1
    for i in range(1, nb - 1):
        start, end = i - 2, i
        if i == 1:
            cand = middle[2:last]
        elif i == 2:
            cand = middle[3:last]
        elif i == nb - 3 or i == nb - 2:
            cand = middle[:last]
        elif start > last:
            cand = middle[:last]
        elif end + 1 == last:
            cand = middle[:start]
        else:
            cand = np.concatenate((middle[:start], middle[end + 1:last]))
        rand_attn[i - 1, :] = np.random.permutation(cand)[:r]
    return rand_attn


def rand_attn_plan(seq, block, r):
    """Both libraries' `get_rand_attn_plan`."""
    nb = seq // block
    if 2 * r + 5 < nb:
        return [(2 * r + 5) * block, seq], [r, 0]
    if r + 5 < nb:
        return [(r + 5) * block, seq], [r // 2, r - r // 2]
    return [seq], [r]


def single_row(block_id, to_start, to_end, r):
    """Both libraries' `get_single_block_row_attention` (window 1+1, one global block each side)."""
    perm = np.random.permutation(np.arange(to_start, to_end, dtype=np.int32))
    illegal = list(range(block_id - 1, block_id + 2))
    illegal.extend(range(1))
    illegal.extend(range(to_end - 1, to_end))
    if block_id == 1:
        illegal.append(to_end - 2)
    if block_id == to_end - 2:
        illegal.append(1)
    chosen = []
    for i in range(to_end - to_start):
        if perm[i] not in illegal:
            chosen.append(perm[i])
        if len(chosen) == r:
            break
    return np.array(chosen, dtype=np.int32)


def rand_mask_with_head(seq, block, heads, plan_len, plan_r):
    """Both libraries' `bigbird_block_rand_mask_with_head` (training draw): all heads, rows 1 .. n-2."""
    nb = seq // block
    plan_blocks = np.array(plan_len) // block
    max_plan = plan_len.index(seq)
    out = [np.zeros((nb, int(np.sum(plan_r[:max_plan + 1]))), dtype=np.int32) for _ in range(heads)]
    for p in range(max_plan + 1):
        lo = 0
        if p > 0:
            if plan_r[p] > 0:
                lo = int(np.sum(plan_r[:p]))
                hi = int(np.sum(plan_r[:p + 1]))
                for row in range(1, plan_blocks[p - 1]):
                    for h in range(heads):
                        out[h][row, lo:hi] = single_row(row, plan_blocks[p - 1], plan_blocks[p], plan_r[p])
            for q in range(p):
                if plan_r[q] == 0:
                    continue
                for row in range(plan_blocks[p - 1], plan_blocks[p]):
                    lo = 0
                    to_start = 0
                    if q > 0:
                        lo = int(np.sum(plan_r[:q]))
                        to_start = plan_blocks[q - 1]
                    hi = int(np.sum(plan_r[:q + 1]))
                    for h in range(heads):
                        out[h][row, lo:hi] = single_row(row, to_start, plan_blocks[q], plan_r[q])
        if plan_r[p] == 0:
            continue
        hi = int(np.sum(plan_r[:p + 1]))
        from_start = 1
        to_start = 0
        if p > 0:
            lo = int(np.sum(plan_r[:p]))
            from_start = plan_blocks[p - 1]
            to_start = plan_blocks[p - 1]
        for row in range(from_start, plan_blocks[p]):
            for h in range(heads):
                out[h][row, lo:hi] = single_row(row, to_start, plan_blocks[p], plan_r[p])
    return [o[1:nb - 1, :] for o in out]


def draw(lib, seq, block, r, heads, seed, max_pos):
    """The training-mode rand_attn [heads][n-2][r] of HF ("hf") or Google ("google") at a padded length."""
    np.random.seed(seed)
    paper = [1024, 3072, 4096] if lib == "hf" else [1024, 2048, 3072, 4096]
    if seq in paper:
        return [rand_mask_paper(max_pos, max_pos, block, r, 1024)[: seq // block - 2] for _ in range(heads)]
    plan_len, plan_r = rand_attn_plan(seq, block, r)
    return rand_mask_with_head(seq, block, heads, plan_len, plan_r)


# ---------------------------------------------------------------- checks and output

def check_fixtures():
    """The reference reproduces every captured train-mode rand_attn exactly."""
    import json
    fixtures = os.path.join(HERE, "..", "hf-bigbird")
    for case in sorted(os.listdir(fixtures)):
        meta = json.load(open(os.path.join(fixtures, case, "meta.json")))
        got = np.load(os.path.join(fixtures, case, "rand_attn.npy"))
        if meta["mode"] != "train":
            assert (got == 0).all(), case
            continue
        want = np.stack(draw("hf", meta["seq"], meta["block"], meta["random"], meta["heads"],
                             meta["layer_seed"], meta["max_pos"]))
        for b in range(meta["batch"]):
            assert (got[b] == want).all(), case
        print("fixture", case, "reproduced")


def legacy_random_lines():
    lines = []
    for seed in (0, 1, 5489, 42, 4294967295):
        np.random.seed(seed)
        count = 1300 if seed == 5489 else 8  # 1300 crosses two regenerations of the 624-word state
        lines.append("raw %d %d %s" % (seed, count,
                                       " ".join(str(v) for v in np.random.mtrand._rand._bit_generator.random_raw(count))))
    ns = list(range(0, 21)) + [31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 200, 255, 256, 257, 300, 1]
    for seed in (0, 7, 123456789):
        np.random.seed(seed)
        for n in ns:
            lines.append(("perm %d %d %s" % (seed, n, " ".join(str(v) for v in np.random.permutation(n)))).rstrip())
    return lines


def bigbird_lines():
    cases = []
    for lib in ("hf", "google"):
        for seq in (1024, 2048, 3072, 4096):
            for seed in (0, 1, 11):
                cases.append((lib, seq, 64, 3, 4, seed, 4096))
        # other plans, block sizes and max_pos values
        cases += [(lib, 1536, 64, 3, 2, 5, 4096), (lib, 2560, 64, 3, 2, 2, 4096), (lib, 1024, 32, 2, 3, 3, 2048),
                  (lib, 1280, 64, 3, 3, 4, 4096), (lib, 640, 64, 3, 2, 6, 4096), (lib, 448, 64, 3, 2, 8, 4096),
                  (lib, 2048, 128, 2, 2, 9, 4096), (lib, 3072, 64, 2, 2, 10, 8192), (lib, 960, 64, 3, 2, 12, 4096)]
    lines = []
    for (lib, seq, block, r, heads, seed, max_pos) in cases:
        lines.append("draw %s %d %d %d %d %d %d" % (lib, seq, block, r, heads, seed, max_pos))
        try:
            got = draw(lib, seq, block, r, heads, seed, max_pos)
        except ValueError as e:
            lines.append("error " + str(e).replace("\n", " "))
            continue
        for h, a in enumerate(got):
            lines.append(("head %d " % h + " ".join(str(int(v)) for v in a.reshape(-1))).rstrip())
    return lines


def write(name, lines):
    with open(os.path.join(HERE, name), "w") as f:
        f.write("# generated by make_numpy_vectors.py with NumPy %s; do not edit\n" % np.__version__)
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    check_fixtures()
    write("legacy_random.txt", legacy_random_lines())
    write("bigbird_draws.txt", bigbird_lines())
