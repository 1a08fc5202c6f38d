package dev.starling.api.pattern;

/**
 * The seeded random block draw used by {@code random(...)} and {@code bigbird(...)}. It is a
 * function of {@code (seed, head, queryBlock)} and the candidate set alone: independent of
 * threads, call order and platform, and stable across releases (a golden test pins it).
 *
 * <p>The algorithm, exactly:
 * <ol>
 *   <li>Stream: SplitMix64 (Steele, Lea, Flood 2014) with initial state
 *       {@code mix(mix(mix(seed) ^ head) ^ queryBlock)}, where {@code mix(x)} is SplitMix64's
 *       output function applied to {@code x + 0x9E3779B97F4A7C15}. Each {@code next()} adds
 *       {@code 0x9E3779B97F4A7C15} to the state and returns the output function of the state.
 *       {@code nextInt(n) = (next() >>> 1) mod n}.</li>
 *   <li>Candidates: the key blocks {@code [0, limit)} minus the excluded blocks {@code E}
 *       (the row's window and globals for BigBird); {@code m = limit − |E ∩ [0, limit)|}.
 *       If {@code m <= r}, every candidate is taken.</li>
 *   <li>Otherwise Floyd's algorithm picks {@code r} distinct candidate indices: for
 *       {@code j = m − r .. m − 1}: {@code t = nextInt(j + 1)}; take {@code t} unless already
 *       taken, else take {@code j}. Candidate index {@code t} is the {@code t}-th smallest
 *       candidate block.</li>
 * </ol>
 */
public final class RandomBlocks {
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;

    private long state;

    private RandomBlocks(long state) {
        this.state = state;
    }

    /**
     * The stream for one row.
     *
     * @param seed the pattern's seed
     * @param head query head
     * @param queryBlock query block
     * @return a fresh stream
     */
    public static RandomBlocks forRow(long seed, int head, int queryBlock) {
        return new RandomBlocks(mix(mix(mix(seed) ^ head) ^ queryBlock));
    }

    static long mix(long x) {
        long z = x + GOLDEN;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** @return the next 64 random bits */
    public long next() {
        state += GOLDEN;
        long z = state;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** @return a value in {@code [0, bound)}, {@code bound >= 1} */
    public int nextInt(int bound) {
        return (int) ((next() >>> 1) % bound);
    }

    /**
     * Draws {@code r} distinct blocks from {@code [0, limit)} minus {@code excluded} into {@code row}.
     *
     * @param r number of blocks to draw
     * @param limit candidates are below this
     * @param excluded blocks that may not be drawn, ascending and distinct (any range). Not modified.
     * @param excludedCount how many entries of {@code excluded} are used
     * @param row where the drawn blocks are added. Modified.
     */
    public void draw(int r, int limit, int[] excluded, int excludedCount, BlockRow row) {
        if (r <= 0 || limit <= 0) {
            return;
        }
        int inRange = 0;
        while (inRange < excludedCount && excluded[inRange] < limit) {
            inRange++;
        }
        int m = limit - inRange;
        if (m <= r) {
            for (int t = 0; t < m; t++) {
                row.add(candidate(t, excluded, inRange));
            }
            return;
        }
        // Floyd's algorithm with an open-addressing set of taken indices: O(r) expected, the same draws.
        int[] taken = new int[r];
        int[] table = new int[Integer.highestOneBit(Math.max(1, r) * 2 - 1) << 1];
        java.util.Arrays.fill(table, -1);
        int count = 0;
        for (int j = m - r; j < m; j++) {
            int t = nextInt(j + 1);
            int pick = insert(table, t) ? t : j;
            if (pick == j) {
                insert(table, j);
            }
            taken[count++] = pick;
        }
        for (int i = 0; i < count; i++) {
            row.add(candidate(taken[i], excluded, inRange));
        }
    }

    /** Adds {@code x >= 0} to a linear-probing set; returns false when it was already there. */
    private static boolean insert(int[] table, int x) {
        int mask = table.length - 1;
        for (int i = (x * 0x9E3779B9) >>> 1 & mask; ; i = (i + 1) & mask) {
            if (table[i] == x) {
                return false;
            }
            if (table[i] < 0) {
                table[i] = x;
                return true;
            }
        }
    }

    /** The {@code t}-th smallest block of {@code [0, ∞)} not in {@code excluded[0..n)}. */
    private static int candidate(int t, int[] excluded, int n) {
        int k = t;
        for (int i = 0; i < n && excluded[i] <= k; i++) {
            k++;
        }
        return k;
    }
}
