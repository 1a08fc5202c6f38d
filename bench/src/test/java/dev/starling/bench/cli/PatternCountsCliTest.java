package dev.starling.bench.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.npy.NpyArray;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code starling pattern} with {@code bigbird_hf}: {@code --show} marks the repeated block 0, {@code --npy} writes the counts. */
class PatternCountsCliTest {

    @Test
    void showMarksRepeatedBlocksAndNpyWritesTheCounts(@TempDir Path dir) throws Exception {
        String spec = "bigbird_hf(block=16, random=2, mode=eval)";
        Path npy = dir.resolve("hf.npy");
        StarlingCliTest.Result r = StarlingCliTest.run("pattern", spec, "--seq", "256", "--heads", "2", "--show",
                "--npy", npy.toString());
        assertEquals(0, r.code(), r.err());
        // 16 blocks; eval mode lists block 0 once as global and twice as the random blocks: count 3 in rows 1 .. 14.
        assertTrue(r.out().contains("\n  ################\n  3##............#\n"), r.out());
        assertTrue(r.out().contains("\n  3###...........#\n  3.###..........#\n"), r.out());
        assertTrue(r.out().contains("counted that many times"), r.out());
        NpyArray a = NpyArray.read(npy);
        assertArrayEquals(new int[] {2, 16, 16}, a.shape());
        BlockLayout l = Patterns.parse(spec).layout(256, 256, 2);
        for (int h = 0; h < 2; h++) {
            for (int qb = 0; qb < 16; qb++) {
                for (int kb = 0; kb < 16; kb++) {
                    int p = l.entry(h, qb, kb);
                    assertEquals(p < 0 ? 0 : l.count(h, p), a.data()[(h * 16 + qb) * 16 + kb], "head " + h + " block ("
                            + qb + ", " + kb + ")");
                }
            }
        }
    }

    @Test
    void layoutsWithoutRepeatsAreDrawnAsBefore() {
        StarlingCliTest.Result r = StarlingCliTest.run("pattern", "window(block=4, blocks=3)", "--seq", "16", "--show");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("\n  ##..\n  ###.\n  .###\n  ..##\n"), r.out());
        assertTrue(!r.out().contains("counted"), r.out());
    }
}
