package dev.starling.api.pattern.numpy;

/**
 * NumPy's legacy {@code RandomState} stream, bit for bit: the MT19937 generator (Matsumoto and
 * Nishimura 1998) as {@code np.random.seed(seed)} initialises it, and the draws of
 * {@code np.random.permutation} / {@code np.random.shuffle} on one-dimensional arrays.
 *
 * <p>The algorithm, exactly (checked against NumPy 2.4 by {@code make_numpy_vectors.py}):
 * <ul>
 *   <li>Seeding: for an integer seed {@code 0 <= s <= 2^32 − 1}, NumPy's {@code _legacy_seeding}
 *       calls {@code mt19937_seed}, which is Matsumoto and Nishimura's {@code init_genrand}:
 *       {@code mt[0] = s}, {@code mt[i] = 1812433253 · (mt[i−1] ^ (mt[i−1] >>> 30)) + i} (mod 2^32),
 *       and the next output regenerates the 624-word state. (Only array seeds go through
 *       {@code init_by_array}.)</li>
 *   <li>Each 32-bit output: the standard MT19937 twist and tempering ({@code genrand_int32}).</li>
 *   <li>{@code random_interval(max)}: {@code mask} = the smallest {@code 2^k − 1 >= max}; draw
 *       {@code v = next32() & mask} until {@code v <= max} (for {@code max <= 2^32 − 1}, which is all
 *       this class needs). {@code max == 0} draws nothing.</li>
 *   <li>{@code shuffle(x)} of a one-dimensional array of length {@code n}: for
 *       {@code i = n − 1 down to 1}: {@code j = random_interval(i)}, swap {@code x[i]} and {@code x[j]}.
 *       {@code permutation(n)} shuffles {@code [0, 1, …, n − 1]}; {@code permutation(array)} shuffles a
 *       copy of the array. Arrays of length 0 or 1 draw nothing.</li>
 * </ul>
 * A stream is a mutable object: draws continue where the previous call stopped, as NumPy's global
 * state does. Not thread-safe; each layout builds its own.
 */
public final class NumpyLegacyRandom {
    private static final int N = 624;
    private static final int M = 397;
    private static final int MATRIX_A = 0x9908b0df;
    private static final int UPPER = 0x80000000;
    private static final int LOWER = 0x7fffffff;
    /** Largest seed {@code np.random.seed} takes. */
    public static final long MAX_SEED = 0xFFFF_FFFFL;

    private final int[] mt = new int[N];
    private int pos;

    private NumpyLegacyRandom(long seed) {
        mt[0] = (int) seed;
        for (int i = 1; i < N; i++) {
            mt[i] = 1812433253 * (mt[i - 1] ^ (mt[i - 1] >>> 30)) + i;
        }
        pos = N;
    }

    /**
     * The stream after {@code np.random.seed(seed)}.
     *
     * @param seed {@code 0 <= seed <= 2^32 − 1}, as NumPy requires
     * @return a fresh stream
     * @throws IllegalArgumentException if the seed is out of NumPy's range
     */
    public static NumpyLegacyRandom seeded(long seed) {
        return new NumpyLegacyRandom(checkSeed(seed));
    }

    /**
     * Checks a seed against {@code np.random.seed}'s range.
     *
     * @param seed the seed
     * @return {@code seed}
     * @throws IllegalArgumentException if it is outside {@code 0 .. 2^32 − 1}
     */
    public static long checkSeed(long seed) {
        if (seed < 0 || seed > MAX_SEED) {
            throw new IllegalArgumentException("seed must be between 0 and 2^32 - 1 (NumPy's np.random.seed range), got "
                    + seed);
        }
        return seed;
    }

    /** @return the next 32-bit output, as an unsigned value in {@code [0, 2^32)} */
    public long nextUint32() {
        if (pos == N) {
            twist();
        }
        int y = mt[pos++];
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >>> 18;
        return y & 0xFFFF_FFFFL;
    }

    private void twist() {
        for (int i = 0; i < N; i++) {
            int y = (mt[i] & UPPER) | (mt[(i + 1) % N] & LOWER);
            mt[i] = mt[(i + M) % N] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
        }
        pos = 0;
    }

    /**
     * NumPy's {@code random_interval(max)}: a value in {@code [0, max]} by masked rejection.
     *
     * @param max {@code 0 <= max <= 2^31 − 1}
     * @return the value; {@code 0} without a draw when {@code max == 0}
     */
    public int randomInterval(int max) {
        if (max < 0) {
            throw new IllegalArgumentException("max must be >= 0, got " + max);
        }
        if (max == 0) {
            return 0;
        }
        long mask = max;
        mask |= mask >>> 1;
        mask |= mask >>> 2;
        mask |= mask >>> 4;
        mask |= mask >>> 8;
        mask |= mask >>> 16;
        long value;
        do {
            value = nextUint32() & mask;
        } while (value > max);
        return (int) value;
    }

    /**
     * {@code np.random.shuffle(values)} for a one-dimensional array: Fisher–Yates from the end.
     *
     * @param values the array to shuffle. Modified.
     */
    public void shuffle(int[] values) {
        for (int i = values.length - 1; i >= 1; i--) {
            int j = randomInterval(i);
            int t = values[i];
            values[i] = values[j];
            values[j] = t;
        }
    }

    /**
     * {@code np.random.permutation(values)} for a one-dimensional array.
     *
     * @param values the elements. Not modified.
     * @return a shuffled copy
     */
    public int[] permutation(int[] values) {
        int[] copy = values.clone();
        shuffle(copy);
        return copy;
    }

    /**
     * {@code np.random.permutation(n)}.
     *
     * @param n {@code >= 0}
     * @return a random order of {@code 0 .. n − 1}
     */
    public int[] permutation(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("n must be >= 0, got " + n);
        }
        int[] a = new int[n];
        for (int i = 0; i < n; i++) {
            a[i] = i;
        }
        shuffle(a);
        return a;
    }
}
