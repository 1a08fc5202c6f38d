package dev.starling.bench.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.npy.NpyArray;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.ExplicitPattern;
import dev.starling.conformance.Comparison;
import dev.starling.conformance.DenseOracle;
import dev.starling.conformance.Tolerance;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Block counts through the tool: a {@code .npy} mask with counts read by {@code layout(file=…)}, shown, exported and run. */
class BlockCountsCliTest {
    /** 4 x 4 blocks: block (1, 0) counted 3 times, (2, 2) twice, (3, 3) 300 times (int32 only). */
    private static final int[] COUNTS = {
        1, 0, 0, 0,
        3, 1, 0, 0,
        1, 1, 2, 0,
        1, 0, 1, 300};

    private static Path counts(Path dir, boolean int32) throws Exception {
        Path f = dir.resolve(int32 ? "counts32.npy" : "counts8.npy");
        if (int32) {
            NpyArray.ofInts(COUNTS, 4, 4).write(f);
        } else {
            byte[] b = new byte[COUNTS.length];
            for (int i = 0; i < b.length; i++) {
                b[i] = (byte) Math.min(COUNTS[i], 5);
            }
            NpyArray.ofBytes(b, 4, 4).write(f);
        }
        return f;
    }

    @Test
    void patternShowsAndExportsCounts(@TempDir Path dir) throws Exception {
        Path in = counts(dir, true);
        Path out = dir.resolve("out.npy");
        StarlingCliTest.Result r = StarlingCliTest.run("pattern", "layout(file=" + in + ", block=8)", "--seq", "32",
                "--show", "--npy", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("  #...\n  3#..\n  ##2.\n  #.#+\n"), r.out());
        assertTrue(r.out().contains("block counts   3 allowed blocks counted more than once (largest count 300)"), r.out());
        assertTrue(r.out().contains("wrote " + out + ": int32 [1, 4, 4]"), r.out());
        NpyArray written = NpyArray.read(out);
        assertEquals("<i4", written.dtype());
        assertArrayEquals(COUNTS, written.toMaskCounts());

        Path small = dir.resolve("small.npy");
        r = StarlingCliTest.run("pattern", "layout(file=" + counts(dir, false) + ", block=8)", "--seq", "32",
                "--npy", small.toString());
        assertEquals(0, r.code(), r.err());
        NpyArray bytes = NpyArray.read(small);
        assertEquals("|u1", bytes.dtype());
        assertEquals(5, bytes.toMaskCounts()[15]);
        assertEquals(3, bytes.toMaskCounts()[4]);
    }

    @Test
    void runHonoursTheCountsOfALayoutFile(@TempDir Path dir) throws Exception {
        Path layoutFile = counts(dir, true);
        Random rnd = new Random(24);
        int h = 2;
        int n = 30;   // a partial tail block
        int d = 8;
        float[][] qkv = new float[3][h * n * d];
        Path[] files = new Path[3];
        for (int t = 0; t < 3; t++) {
            for (int x = 0; x < qkv[t].length; x++) {
                qkv[t][x] = (float) rnd.nextGaussian();
            }
            files[t] = dir.resolve("qkv".charAt(t) + ".npy");
            NpyArray.ofFloats(qkv[t], 1, h, n, d).write(files[t]);
        }
        StarlingCliTest.Result r = StarlingCliTest.run("run", "--q", files[0].toString(), "--k", files[1].toString(),
                "--v", files[2].toString(), "--pattern", "layout(file=" + layoutFile + ", block=8)",
                "--out", dir.resolve("o.npy").toString(), "--lse", dir.resolve("lse.npy").toString());
        assertEquals(0, r.code(), r.err());
        AttentionProblem p = AttentionProblem.builder().heads(h).length(n).headDim(d).build();
        BlockLayout layout = ExplicitPattern.fromFile(layoutFile, 8).layout(n, n, h);
        assertTrue(layout.hasCounts());
        DenseOracle.Result expected = DenseOracle.compute(p, layout, Tensor.bhsd(qkv[0], 1, h, n, d),
                Tensor.bhsd(qkv[1], 1, h, n, d), Tensor.bhsd(qkv[2], 1, h, n, d));
        Comparison.Outcome o = Comparison.compare(p, expected,
                Tensor.bhsd(NpyArray.read(dir.resolve("o.npy")).toFloats(), 1, h, n, d),
                NpyArray.read(dir.resolve("lse.npy")).toFloats(), Tolerance.FP32);
        assertTrue(o.ok(), o.message());
    }

    @Test
    void aNegativeCountIsRefused(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("neg.npy");
        NpyArray.ofInts(new int[] {1, -2, 0, 1}, 2, 2).write(f);
        StarlingCliTest.Result r = StarlingCliTest.run("pattern", "layout(file=" + f + ", block=8)", "--seq", "16");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("query block 0, key block 1: a count must be >= 0 (0: not allowed), got -2"), r.err());
    }
}
