package dev.starling.api.pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.npy.NpyArray;
import dev.starling.api.spi.ProviderFolder;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The text syntax, every built-in pattern's semantics, and name resolution through ServiceLoader. */
class PatternsTest {

    @ParameterizedTest
    @ValueSource(strings = {"dense(block=64)", "window(block=32, blocks=5)", "global(block=64, first=2, last=0)",
        "random(block=64, blocks=3, seed=-5)", "bigbird(block=64, window=3, global=2, random=3, seed=0)",
        "longformer(block=64, window=3, global=[0, -1])", "fixed(block=64, local=4, global=1)",
        "strided(block=64, stride=8)", "causal(window(block=64, blocks=3))",
        "union(window(block=64, blocks=1), global(block=64, first=1, last=0))"})
    void canonicalTextRoundTrips(String text) {
        PatternSpec p = Patterns.parse(text);
        assertEquals(text, p.text());
        assertEquals(p, Patterns.parse(p.text()));
    }

    @Test
    void defaultsAndSpacingAndCase() {
        assertEquals("bigbird(block=64, window=3, global=2, random=3, seed=0)", Patterns.parse("bigbird").text());
        assertEquals("bigbird(block=32, window=3, global=2, random=3, seed=0)",
                Patterns.parse("  BigBird ( block = 32 )  ").text());
        assertEquals("longformer(block=64, window=3, global=[2])", Patterns.parse("longformer(global=2)").text());
    }

    @Test
    void errorsGivePositionAndExpectedForm() {
        PatternSyntaxException e = assertThrows(PatternSyntaxException.class,
                () -> Patterns.parse("bigbird(block=64, windw=3)"));
        assertEquals(18, e.position());
        assertTrue(e.getMessage().contains("unknown argument 'windw'"), e.getMessage());
        assertTrue(e.getMessage().contains("expected form: bigbird(block=64, window=3, global=2, random=3, seed=0)"));

        e = assertThrows(PatternSyntaxException.class, () -> Patterns.parse("bigbird(block=64 window=3)"));
        assertEquals(17, e.position());
        assertTrue(e.getMessage().contains("expected ',' or ')'"), e.getMessage());

        e = assertThrows(PatternSyntaxException.class, () -> Patterns.parse("bigbrid(block=64)"));
        assertEquals(0, e.position());
        assertTrue(e.getMessage().contains("unknown pattern 'bigbrid'") && e.getMessage().contains("bigbird"));

        e = assertThrows(PatternSyntaxException.class, () -> Patterns.parse("window(block=x)"));
        assertTrue(e.getMessage().contains("must be an integer"), e.getMessage());

        e = assertThrows(PatternSyntaxException.class, () -> Patterns.parse("window(blocks=4)"));
        assertTrue(e.getMessage().contains("odd"), e.getMessage());

        e = assertThrows(PatternSyntaxException.class, () -> Patterns.parse("window(block=64"));
        assertEquals(15, e.position());

        e = assertThrows(PatternSyntaxException.class, () -> Patterns.parse("dense(block=64) extra"));
        assertEquals(16, e.position());

        e = assertThrows(PatternSyntaxException.class,
                () -> Patterns.parse("union(window(block=64), window(block=32))"));
        assertTrue(e.getMessage().contains("one block size"), e.getMessage());

        e = assertThrows(PatternSyntaxException.class, () -> Patterns.parse("causal()"));
        assertTrue(e.getMessage().contains("expected 1 nested pattern"), e.getMessage());

        e = assertThrows(PatternSyntaxException.class, () -> Patterns.parse("dense(window(block=64))"));
        assertTrue(e.getMessage().contains("takes no nested pattern"), e.getMessage());

        e = assertThrows(PatternSyntaxException.class, () -> Patterns.parse("layout(file=/no/such/file.npy)"));
        assertTrue(e.getMessage().contains("no such file"), e.getMessage());
    }

    @Test
    void patternNamesFromServiceLoader() {
        assertTrue(Patterns.providers().containsKey("diagonal"), "test provider registered in META-INF/services");
        BlockLayout l = Patterns.parse("diagonal(block=8)").layout(32, 32, 1);
        assertEquals(4, l.nnz(0));
        assertTrue(l.allowed(0, 2, 2));
        assertFalse(l.allowed(0, 2, 1));
    }

    @Test
    void aPatternNameKeepsItsFirstProviderAndUnusedProvidersAreNamed(@TempDir Path dir) throws Exception {
        try (URLClassLoader loader = ProviderFolder.loader(dir, PatternProvider.class,
                ConflictingPatternProviders.AnotherDiagonal.class.getName(),
                ConflictingPatternProviders.BigBirdImpostor.class.getName(),
                ConflictingPatternProviders.Nameless.class.getName())) {
            Thread thread = Thread.currentThread();
            ClassLoader before = thread.getContextClassLoader();
            thread.setContextClassLoader(loader);
            try {
                assertEquals(DiagonalPatternProvider.class, Patterns.providers().get("diagonal").getClass(),
                        "the test resources list DiagonalPatternProvider before the folder");
                assertEquals(BigBirdPattern.class, Patterns.parse("bigbird(block=16)").getClass());
                PatternSyntaxException e = assertThrows(PatternSyntaxException.class, () -> Patterns.parse("nothing"));
                assertTrue(e.getMessage().contains("duplicate pattern name 'bigbird'")
                        && e.getMessage().contains(ConflictingPatternProviders.BigBirdImpostor.class.getName()), e.getMessage());
                assertTrue(e.getMessage().contains("duplicate pattern name 'diagonal'")
                        && e.getMessage().contains(DiagonalPatternProvider.class.getName()), e.getMessage());
                assertTrue(e.getMessage().contains(ConflictingPatternProviders.Nameless.class.getName())
                        && e.getMessage().contains("name() returned null"), e.getMessage());
            } finally {
                thread.setContextClassLoader(before);
            }
        }
    }

    @Test
    void builtinSemantics() {
        // window: i-1..i+1 clipped
        BlockLayout w = Patterns.parse("window(block=10, blocks=3)").layout(50, 50, 1);
        assertEquals(2, w.rowSize(0, 0));
        assertEquals(3, w.rowSize(0, 2));
        assertTrue(w.allowed(0, 2, 1) && w.allowed(0, 2, 3) && !w.allowed(0, 2, 4));
        // global: rows 0 and last see all, others see columns 0 and last
        BlockLayout g = Patterns.parse("global(block=10, first=1, last=1)").layout(50, 50, 1);
        assertEquals(5, g.rowSize(0, 0));
        assertEquals(5, g.rowSize(0, 4));
        assertEquals(2, g.rowSize(0, 2));
        // random: r distinct per row, per head
        BlockLayout r = Patterns.parse("random(block=10, blocks=2, seed=3)").layout(200, 200, 2);
        for (int qb = 0; qb < 20; qb++) {
            assertEquals(2, r.rowSize(0, qb));
        }
        assertFalse(r.isShared());
        // longformer: window plus global rows/columns at the given indices, negative from the end
        BlockLayout lf = Patterns.parse("longformer(block=10, window=1, global=[1, -1])").layout(50, 50, 1);
        assertEquals(5, lf.rowSize(0, 1));
        assertEquals(5, lf.rowSize(0, 4));
        assertEquals(3, lf.rowSize(0, 2));
        // fixed: own chunk plus last block of each chunk
        BlockLayout f = Patterns.parse("fixed(block=10, local=2, global=1)").layout(60, 60, 1);
        assertTrue(f.allowed(0, 2, 2) && f.allowed(0, 2, 3) && f.allowed(0, 2, 1) && f.allowed(0, 2, 5));
        assertFalse(f.allowed(0, 2, 0) || f.allowed(0, 2, 4));
        // strided: band |i-j| < s plus j = i mod s
        BlockLayout s = Patterns.parse("strided(block=10, stride=3)").layout(100, 100, 1);
        assertTrue(s.allowed(0, 5, 3) && s.allowed(0, 5, 7) && s.allowed(0, 5, 2) && s.allowed(0, 5, 8));
        assertFalse(s.allowed(0, 5, 1) || s.allowed(0, 5, 9) || s.allowed(0, 5, 0));
        // causal: nothing above the diagonal, layout marked causal
        BlockLayout c = Patterns.parse("causal(dense(block=10))").layout(50, 50, 1);
        assertTrue(c.causal());
        assertEquals(15, c.nnz(0));
        // union: set union, counted once
        BlockLayout u = Patterns.parse("union(window(block=10, blocks=3), window(block=10, blocks=1))").layout(50, 50, 1);
        assertEquals(w, BlockLayout.ofCsr(50, 50, 10, 10, false, new int[][] {u.rowStart(0)},
                new int[][] {u.keyBlockIndices(0)}));
    }

    @Test
    void causalSpellingsAreTheSameLayout() {
        PatternSpec p = Patterns.parse("bigbird(block=16, window=3, global=2, random=3, seed=9)");
        assertEquals(p.layout(400, 400, 3, true), Patterns.parse("causal(" + p.text() + ")").layout(400, 400, 3));
        assertEquals(p.layout(300, 500, 3, true), Patterns.parse("causal(" + p.text() + ")").layout(300, 500, 3, false));
    }

    @Test
    void explicitLayoutFromFileAndCode(@TempDir Path dir) throws Exception {
        byte[] mask = {1, 0, 0, 1, 1, 0, 0, 1, 1};
        Path file = dir.resolve("mask.npy");
        NpyArray.ofBytes(mask, 3, 3).write(file);
        BlockLayout fromFile = Patterns.parse("layout(file=" + file + ", block=8)").layout(20, 20, 4);
        assertTrue(fromFile.isShared());
        assertEquals(5, fromFile.nnz(0));
        boolean[][] m = {{true, false, false}, {true, true, false}, {false, true, true}};
        assertEquals(fromFile, ExplicitPattern.of(8, m).layout(20, 20, 4));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ExplicitPattern.of(8, m).layout(40, 40, 1));
        assertTrue(e.getMessage().contains("3x3 blocks") && e.getMessage().contains("5x5"), e.getMessage());
        Path bad = dir.resolve("bad.npy");
        Files.write(bad, new byte[] {1, 2, 3});
        assertThrows(PatternSyntaxException.class, () -> Patterns.parse("layout(file=" + bad + ")"));

    }

    @Test
    void explicitTextParsesBackFromAFileAndIsOnlyADescriptionInCode(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("odd, name (1).npy");
        NpyArray.ofBytes(new byte[] {1, 0, 1, 1}, 2, 2).write(file);
        PatternSpec fromFile = ExplicitPattern.fromFile(file, 8);
        assertEquals("layout(file='" + file + "', block=8)", fromFile.text());
        assertEquals(fromFile, Patterns.parse(fromFile.text()));

        PatternSpec inCode = ExplicitPattern.of(8, new boolean[][] {{true, false}, {true, true}});
        assertEquals(fromFile, inCode);
        assertEquals("layout(<1x2x2 in code>, block=8)", inCode.text());
        assertThrows(PatternSyntaxException.class, () -> Patterns.parse(inCode.text()));
    }

    @Test
    void csrValidationNamesTheProblem() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BlockLayout.ofCsr(32, 32, 16, 16, false, new int[][] {{0, 2, 3}}, new int[][] {{1, 0, 1}}));
        assertTrue(e.getMessage().contains("strictly ascending"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> BlockLayout.ofCsr(32, 32, 16, 16, false, new int[][] {{0, 1, 2}}, new int[][] {{0, 2}}));
        assertTrue(e.getMessage().contains("outside [0, 2)"), e.getMessage());
    }
}
