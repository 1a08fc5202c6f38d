package dev.starling.api.pattern.numpy;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@link NumpyLegacyRandom} against NumPy's own outputs ({@code legacy_random.txt}, written by
 * {@code make_numpy_vectors.py} in the test resources with NumPy 2.4).
 */
class NumpyLegacyRandomTest {

    @Test
    void rawOutputsMatchNumpyAcrossStateRegenerations() throws IOException {
        int checked = 0;
        for (String[] f : GeneratedVectors.lines("legacy_random.txt")) {
            if (!f[0].equals("raw")) {
                continue;
            }
            long seed = Long.parseLong(f[1]);
            int count = Integer.parseInt(f[2]);
            NumpyLegacyRandom rng = NumpyLegacyRandom.seeded(seed);
            for (int i = 0; i < count; i++) {
                assertEquals(Long.parseLong(f[3 + i]), rng.nextUint32(), "seed " + seed + ", output " + i);
            }
            checked++;
        }
        assertEquals(5, checked);
    }

    @Test
    void permutationsMatchNumpyWithTheStreamContinuingAcrossCalls() throws IOException {
        Map<Long, NumpyLegacyRandom> streams = new HashMap<>();
        int checked = 0;
        for (String[] f : GeneratedVectors.lines("legacy_random.txt")) {
            if (!f[0].equals("perm")) {
                continue;
            }
            long seed = Long.parseLong(f[1]);
            int n = Integer.parseInt(f[2]);
            NumpyLegacyRandom rng = streams.computeIfAbsent(seed, NumpyLegacyRandom::seeded);
            assertArrayEquals(GeneratedVectors.ints(f, 3), rng.permutation(n), "seed " + seed + ", permutation(" + n + ") number " + checked);
            checked++;
        }
        assertTrue(checked > 100, "only " + checked + " permutations checked");
    }

    @Test
    void permutationOfAnArrayShufflesPositionsAsPermutationOfItsLength() {
        int[] values = {10, 11, 12, 13, 14, 15, 16};
        int[] order = NumpyLegacyRandom.seeded(3).permutation(values.length);
        int[] shuffled = NumpyLegacyRandom.seeded(3).permutation(values);
        for (int i = 0; i < values.length; i++) {
            assertEquals(values[order[i]], shuffled[i], "position " + i);
        }
        assertArrayEquals(new int[] {10, 11, 12, 13, 14, 15, 16}, values, "the input is not modified");
    }

    @Test
    void seedsOutsideNumpysRangeAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> NumpyLegacyRandom.seeded(-1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> NumpyLegacyRandom.seeded(NumpyLegacyRandom.MAX_SEED + 1));
        assertTrue(e.getMessage().contains("2^32 - 1"), e.getMessage());
        assertEquals(0, NumpyLegacyRandom.seeded(0).randomInterval(0));
    }
}
