package dev.starling.api.pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.pattern.LayoutExchange.Array;
import dev.starling.api.pattern.LayoutExchange.Format;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Layouts exported as FlexAttention, BSR and ONNX Runtime arrays come back with the same key sets (issue 26). */
class LayoutExchangeTest {

    private record Case(String spec, int nq, int nk, int heads, boolean causal) {
    }

    private static final List<Case> CASES = List.of(
            new Case("bigbird(block=64, window=3, global=2, random=3)", 1024, 1024, 4, false),
            new Case("bigbird(block=32, window=3, global=1, random=2)", 1000, 1000, 3, true),
            new Case("window(block=16, blocks=3)", 200, 328, 2, true),
            new Case("dense(block=16)", 100, 60, 1, false),
            new Case("union(window(block=32, blocks=1), global(block=32, first=1, last=1))", 500, 500, 2, false),
            new Case("bigbird(block=16, window=5, global=1, random=4)", 160, 160, 5, true));

    private static void assertSameKeySets(BlockLayout want, int heads, BlockLayout got, String what) {
        assertEquals(want.queryBlocks(), got.queryBlocks(), what);
        assertEquals(want.keyBlocks(), got.keyBlocks(), what);
        assertEquals(want.causal(), got.causal(), what);
        for (int h = 0; h < heads; h++) {
            for (int r = 0; r < want.queryBlocks(); r++) {
                int[] a = new int[want.rowSize(h, r)];
                for (int p = want.rowBegin(h, r); p < want.rowEnd(h, r); p++) {
                    a[p - want.rowBegin(h, r)] = want.keyBlock(h, p);
                }
                int[] b = new int[got.rowSize(h, r)];
                for (int p = got.rowBegin(h, r); p < got.rowEnd(h, r); p++) {
                    b[p - got.rowBegin(h, r)] = got.keyBlock(h, p);
                }
                assertArrayEquals(a, b, what + ": head " + h + ", row " + r);
            }
        }
    }

    private static Map<String, Array> byName(List<Array> arrays) {
        Map<String, Array> m = new LinkedHashMap<>();
        for (Array a : arrays) {
            m.put(a.name(), a);
        }
        return m;
    }

    @Test
    void everyFormatRoundTripsEveryCase(@TempDir Path dir) {
        for (Case c : CASES) {
            BlockLayout layout = Patterns.parse(c.spec()).layout(c.nq(), c.nk(), c.heads(), c.causal());
            for (Format f : Format.values()) {
                String what = f.label() + " " + c;
                BlockLayout back = LayoutExchange.fromArrays(f, byName(LayoutExchange.export(layout, c.heads(), f)),
                        c.nq(), c.nk(), layout.queryBlock(), layout.keyBlock(), c.causal());
                assertSameKeySets(layout, c.heads(), back, what);
                Path prefix = dir.resolve(f.label() + "-" + c.nq() + "-" + c.heads() + (c.causal() ? "-causal" : ""));
                assertSameKeySets(layout, c.heads(), readBack(layout, c.heads(), f, prefix), what + " through files");
            }
        }
    }

    private static BlockLayout readBack(BlockLayout layout, int heads, Format f, Path prefix) {
        try {
            LayoutExchange.write(layout, heads, f, prefix);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return LayoutExchange.read(LayoutExchange.files(prefix, f).get(0));
    }

    @Test
    void flexSplitsFullFromPartialBlocksByTheCausalRule() {
        BlockLayout layout = Patterns.parse("dense(block=16)").layout(64, 64, 1, true);
        Map<String, Array> flex = byName(LayoutExchange.export(layout, 1, Format.FLEX));
        // Row r reads blocks 0..r: r full blocks before the diagonal, the diagonal partial.
        assertArrayEquals(new int[] {1, 1, 1, 1}, flex.get("kv_num_blocks").values());
        assertArrayEquals(new int[] {0, 1, 2, 3}, flex.get("full_kv_num_blocks").values());
        assertEquals(2, flex.get("kv_indices").values()[2 * 4]);
        BlockLayout open = Patterns.parse("dense(block=16)").layout(64, 64, 1, false);
        assertArrayEquals(new int[4], byName(LayoutExchange.export(open, 1, Format.FLEX)).get("kv_num_blocks").values());
    }

    @Test
    void anExportedLayoutIsAPatternAgain(@TempDir Path dir) throws Exception {
        BlockLayout layout = Patterns.parse("bigbird(block=32, window=3, global=1, random=2)").layout(640, 640, 2);
        Path prefix = dir.resolve("mask");
        LayoutExchange.write(layout, 2, Format.ORT, prefix);
        BlockLayout again = Patterns.parse("layout(file=" + prefix + ".json, block=32)").layout(640, 640, 2);
        assertSameKeySets(layout, 2, again, "layout(file=….json)");
        IllegalArgumentException block = assertThrows(IllegalArgumentException.class,
                () -> Patterns.parse("layout(file=" + prefix + ".json, block=64)").layout(640, 640, 2));
        assertTrue(block.getMessage().contains("32 x 32") && block.getMessage().contains("block=64"), block.getMessage());
    }

    @Test
    void countsAndBrokenArraysAreRefusedWithTheirPlace() {
        BlockLayout counted = BlockLayout.ofCsr(64, 64, 32, 32, false, new int[][] {{0, 2, 3}}, new int[][] {{0, 1, 1}},
                new int[][] {{2, 1, 1}}, 0);
        IllegalArgumentException counts = assertThrows(IllegalArgumentException.class,
                () -> LayoutExchange.export(counted, 1, Format.BSR));
        assertTrue(counts.getMessage().contains("no block counts"), counts.getMessage());

        BlockLayout layout = Patterns.parse("dense(block=16)").layout(64, 64, 1, true);
        Map<String, Array> flex = byName(LayoutExchange.export(layout, 1, Format.FLEX));
        flex.get("full_kv_indices").values()[3 * 4] = 3;   // row 3 lists its diagonal as full and partial
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class,
                () -> LayoutExchange.fromArrays(Format.FLEX, flex, 64, 64, 16, 16, true));
        assertTrue(twice.getMessage().contains("row 3") && twice.getMessage().contains("ascending"), twice.getMessage());

        Map<String, Array> bsr = byName(LayoutExchange.export(layout, 1, Format.BSR));
        bsr.get("indices").values()[0] = 9;
        IllegalArgumentException range = assertThrows(IllegalArgumentException.class,
                () -> LayoutExchange.fromArrays(Format.BSR, bsr, 64, 64, 16, 16, true));
        assertTrue(range.getMessage().contains("key block 9"), range.getMessage());
        bsr.remove("indptr");
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> LayoutExchange.fromArrays(Format.BSR, bsr, 64, 64, 16, 16, true));
        assertTrue(missing.getMessage().contains("'indptr' is missing"), missing.getMessage());
        IllegalArgumentException shape = assertThrows(IllegalArgumentException.class,
                () -> LayoutExchange.fromArrays(Format.ORT, byName(LayoutExchange.export(layout, 1, Format.ORT)), 128, 64,
                        16, 16, true));
        assertTrue(shape.getMessage().contains("block_row_indices") && shape.getMessage().contains("[1, 9]"),
                shape.getMessage());
    }
}
