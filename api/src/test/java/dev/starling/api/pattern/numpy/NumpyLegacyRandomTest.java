package dev.starling.api.pattern.numpy;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@link NumpyLegacyRandom} against NumPy's own outputs ({@code legacy_random.txt}, written by
 * {@code make_numpy_vectors.py} in the test resources with NumPy 2.4).
 */
class NumpyLegacyRandomTest {

    /** The lines of a generated vector file, comments dropped, split on spaces. */
    static List<String[]> vectors(String name) throws IOException {
        try (InputStream in = NumpyLegacyRandomTest.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IOException("test resource " + name + " is missing; run make_numpy_vectors.py");
            }
            List<String[]> lines = new ArrayList<>();
            BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                if (!line.isBlank() && !line.startsWith("#")) {
                    lines.add(line.trim().split(" +"));
                }
            }
            return lines;
        }
    }

    static int[] ints(String[] fields, int from) {
        return Arrays.stream(fields, from, fields.length).mapToInt(Integer::parseInt).toArray();
    }

    @Test
    void rawOutputsMatchNumpyAcrossStateRegenerations() throws IOException {
        int checked = 0;
        for (String[] f : vectors("legacy_random.txt")) {
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
        for (String[] f : vectors("legacy_random.txt")) {
            if (!f[0].equals("perm")) {
                continue;
            }
            long seed = Long.parseLong(f[1]);
            int n = Integer.parseInt(f[2]);
            NumpyLegacyRandom rng = streams.computeIfAbsent(seed, NumpyLegacyRandom::seeded);
            assertArrayEquals(ints(f, 3), rng.permutation(n), "seed " + seed + ", permutation(" + n + ") number " + checked);
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
