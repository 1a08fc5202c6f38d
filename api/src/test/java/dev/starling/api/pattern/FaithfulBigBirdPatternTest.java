package dev.starling.api.pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.pattern.numpy.GeneratedVectors;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * {@code bigbird_hf} and {@code bigbird_google} draw exactly what the Python code draws: the random
 * blocks of every captured Hugging Face fixture ({@code hf-bigbird/<case>/rand_attn.npy}, copied from
 * {@code shared/fixtures/hf-bigbird}) and of {@code bigbird_draws.txt}, written by
 * {@code numpy/make_numpy_vectors.py} (its Python reference of both libraries' draw rules, run with
 * NumPy's own RNG), and their layouts list what the libraries' softmax runs over, repeats counted.
 */
class FaithfulBigBirdPatternTest {

    private static final String[] FIXTURES = {"n1024-eval", "n1024-train", "n2048-eval-pad", "n2048-train"};

    /** The expected count of key block {@code kb} in query block {@code qb}, from HF's list rule. */
    private static int[][] expectedCounts(int n, int[][] rand) {
        int[][] counts = new int[n][n];
        for (int qb = 0; qb < n; qb++) {
            if (qb == 0 || qb == n - 1) {
                Arrays.fill(counts[qb], 1);
                continue;
            }
            counts[qb][0]++;
            counts[qb][n - 1]++;
            for (int kb = Math.max(1, qb - 1); kb <= Math.min(n - 2, qb + 1); kb++) {
                counts[qb][kb]++;
            }
            for (int kb : rand[qb - 1]) {
                counts[qb][kb]++;
            }
        }
        // Rows 1 and n-2 read 0, 1, 2, n-1 and 0, n-3, n-2, n-1: the window rule above gives exactly that.
        return counts;
    }

    private static int[][] actualCounts(BlockLayout l, int h) {
        int n = l.keyBlocks();
        int[][] counts = new int[l.queryBlocks()][n];
        int hl = l.headIndex(h);
        for (int qb = 0; qb < l.queryBlocks(); qb++) {
            for (int p = l.rowBegin(hl, qb); p < l.rowEnd(hl, qb); p++) {
                counts[qb][l.keyBlock(hl, p)] = l.count(hl, p);
            }
        }
        return counts;
    }

    private static void assertLayoutLists(BlockLayout l, int heads, int[][][] rand, String what) {
        int n = l.queryBlocks();
        for (int h = 0; h < heads; h++) {
            int[][] want = expectedCounts(n, rand[h]);
            int[][] got = actualCounts(l, h);
            for (int qb = 0; qb < n; qb++) {
                assertArrayEquals(want[qb], got[qb], what + ", head " + h + ", query block " + qb + " (counts per key block)");
            }
        }
    }

    /** An int32 {@code .npy} file's data (C order) and shape. */
    record IntArray(int[] shape, int[] data) {
    }

    private static byte[] resource(String name) throws IOException {
        try (InputStream in = FaithfulBigBirdPatternTest.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IOException("test resource " + name + " is missing");
            }
            return in.readAllBytes();
        }
    }

    private static IntArray readInt32Npy(String name) throws IOException {
        byte[] bytes = resource(name);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(1, bytes[6], name + ": npy format version");
        int headerLength = b.getShort(8) & 0xffff;
        String header = new String(bytes, 10, headerLength, StandardCharsets.ISO_8859_1);
        assertTrue(header.contains("'descr': '<i4'") && header.contains("'fortran_order': False"), name + ": " + header);
        Matcher m = Pattern.compile("'shape': \\(([0-9, ]*)\\)").matcher(header);
        assertTrue(m.find(), name + ": " + header);
        int[] shape = Arrays.stream(m.group(1).split(",")).map(String::strip).filter(s -> !s.isEmpty())
                .mapToInt(Integer::parseInt).toArray();
        int count = Arrays.stream(shape).reduce(1, (x, y) -> x * y);
        int[] data = new int[count];
        b.position(10 + headerLength);
        b.asIntBuffer().get(data);
        return new IntArray(shape, data);
    }

    private static int metaInt(String meta, String key) {
        Matcher m = Pattern.compile("\"" + key + "\": (\\d+)").matcher(meta);
        assertTrue(m.find(), key + " in meta.json");
        return Integer.parseInt(m.group(1));
    }

    @Test
    void everyCapturedFixtureIsReproducedHeadByHeadWithItsRepeats() throws IOException {
        for (String c : FIXTURES) {
            String meta = new String(resource("hf-bigbird/" + c + "/meta.json"), StandardCharsets.UTF_8);
            int seq = metaInt(meta, "seq");
            int heads = metaInt(meta, "heads");
            int block = metaInt(meta, "block");
            int random = metaInt(meta, "random");
            boolean train = meta.contains("\"mode\": \"train\"");
            String text = "bigbird_hf(block=" + block + ", random=" + random + ", mode=" + (train ? "train" : "eval")
                    + ", seed=" + metaInt(meta, "layer_seed") + ", max_pos=" + metaInt(meta, "max_pos") + ")";
            IntArray rand = readInt32Npy("hf-bigbird/" + c + "/rand_attn.npy");
            int n = seq / block;
            assertArrayEquals(new int[] {metaInt(meta, "batch"), heads, n - 2, random}, rand.shape(), c);
            int[][][] perHead = new int[heads][n - 2][random];
            for (int h = 0; h < heads; h++) {
                for (int row = 0; row < n - 2; row++) {
                    for (int s = 0; s < random; s++) {
                        perHead[h][row][s] = rand.data()[(h * (n - 2) + row) * random + s]; // batch entry 0
                    }
                }
            }
            BlockLayout l = Patterns.parse(text).layout(seq, seq, heads);
            assertLayoutLists(l, heads, perHead, c + " " + text);
            assertEquals(train ? heads : 0, l.drawnForHeads(), c);
            // meta.json counts, per head, the rows that list some block more than once.
            for (int h = 0; h < heads; h++) {
                Matcher m = Pattern.compile("\"" + h + "\": (\\d+)").matcher(
                        meta.substring(meta.indexOf("\"rows_with_duplicates\""), meta.indexOf("\"duplicate_examples\"")));
                int want = m.find() ? Integer.parseInt(m.group(1)) : 0;
                int got = 0;
                int hl = l.headIndex(h);
                for (int qb = 0; qb < n; qb++) {
                    boolean repeated = false;
                    for (int p = l.rowBegin(hl, qb); p < l.rowEnd(hl, qb); p++) {
                        repeated |= l.count(hl, p) > 1;
                    }
                    got += repeated ? 1 : 0;
                }
                assertEquals(want, got, c + ", head " + h + ": rows with a repeated block");
            }
        }
    }

    @Test
    void drawsMatchThePythonReferenceForEveryGeneratedCase() throws IOException {
        List<String[]> lines = GeneratedVectors.lines("/dev/starling/api/pattern/numpy/bigbird_draws.txt");
        int cases = 0;
        int errors = 0;
        for (int i = 0; i < lines.size(); i++) {
            String[] f = lines.get(i);
            assertEquals("draw", f[0], "line " + i);
            BigBirdDraws.Library lib = f[1].equals("hf") ? BigBirdDraws.Library.HUGGING_FACE : BigBirdDraws.Library.GOOGLE;
            int seq = Integer.parseInt(f[2]);
            int block = Integer.parseInt(f[3]);
            int random = Integer.parseInt(f[4]);
            int heads = Integer.parseInt(f[5]);
            long seed = Long.parseLong(f[6]);
            int maxPos = Integer.parseInt(f[7]);
            String what = String.join(" ", f);
            cases++;
            if (lines.get(i + 1)[0].equals("error")) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> BigBirdDraws.drawRandom(lib, what, seq, block, random, heads, seed, maxPos), what);
                String python = String.join(" ", Arrays.copyOfRange(lines.get(i + 1), 1, lines.get(i + 1).length));
                assertTrue(e.getMessage().contains("NumPy: " + python), e.getMessage() + " vs Python: " + python);
                errors++;
                i++;
                continue;
            }
            int[][][] got = BigBirdDraws.drawRandom(lib, what, seq, block, random, heads, seed, maxPos);
            for (int h = 0; h < heads; h++) {
                String[] g = lines.get(i + 1 + h);
                assertEquals("head", g[0]);
                int[] want = GeneratedVectors.ints(g, 2);
                int[] flat = Arrays.stream(got[h]).flatMapToInt(Arrays::stream).toArray();
                assertArrayEquals(want, flat, what + ", head " + h);
            }
            i += heads;
        }
        assertTrue(cases >= 40 && errors >= 2, cases + " cases, " + errors + " errors");
    }

    @Test
    void patternLayoutsListTheDrawnBlocksForPaperAndPlanLengths() {
        for (String lib : new String[] {"hf", "google"}) {
            for (int seq : new int[] {1024, 1536, 2048, 3072, 4096}) {
                String text = lib.equals("hf") ? "bigbird_hf(mode=train, seed=3)" : "bigbird_google(seed=3)";
                BlockLayout l = Patterns.parse(text).layout(seq, seq, 2);
                int[][][] rand = BigBirdDraws.drawRandom(lib.equals("hf") ? BigBirdDraws.Library.HUGGING_FACE
                        : BigBirdDraws.Library.GOOGLE, text, seq, 64, 3, 2, 3, 4096);
                assertLayoutLists(l, 2, rand, text + " at " + seq);
            }
        }
    }

    @Test
    void evalModeCountsBlockZeroOnePlusRTimesInOneSharedLayout() {
        BlockLayout l = Patterns.parse("bigbird_hf(block=32, random=2)").layout(800, 800, 6);
        assertTrue(l.isShared() && l.hasCounts());
        assertEquals(0, l.drawnForHeads());
        int n = l.queryBlocks();
        for (int qb = 1; qb <= n - 2; qb++) {
            assertEquals(0, l.keyBlock(0, l.rowBegin(0, qb)));
            assertEquals(1 + 2, l.count(0, l.rowBegin(0, qb)), "row " + qb + ": block 0 is global plus 2 random copies");
        }
        assertEquals(n, l.rowSize(0, 0));
        assertEquals(n, l.rowSize(0, n - 1));
    }

    @Test
    void theDrawRangesDifferBetweenTheLibrariesAt2048AsTheIssueSays() {
        for (int seed = 0; seed < 5; seed++) {
            int[][][] hf = BigBirdDraws.drawRandom(BigBirdDraws.Library.HUGGING_FACE, "hf", 2048, 64, 3, 4, seed, 4096);
            int[][][] google = BigBirdDraws.drawRandom(BigBirdDraws.Library.GOOGLE, "google", 2048, 64, 3, 4, seed, 4096);
            int hfMax = Arrays.stream(hf).flatMap(Arrays::stream).flatMapToInt(Arrays::stream).max().orElseThrow();
            int googleMax = Arrays.stream(google).flatMap(Arrays::stream).flatMapToInt(Arrays::stream).max().orElseThrow();
            assertTrue(hfMax <= 9 && googleMax <= 15 && googleMax > 9, "seed " + seed + ": " + hfMax + ", " + googleMax);
            for (int[][] head : google) {
                for (int[] row : head) {
                    assertTrue(Arrays.stream(row).allMatch(b -> b >= 1), Arrays.toString(row));
                }
            }
        }
        for (int seq : new int[] {1024, 3072, 4096}) {
            int[][][] hf = BigBirdDraws.drawRandom(BigBirdDraws.Library.HUGGING_FACE, "hf", seq, 64, 3, 4, 7, 4096);
            int[][][] google = BigBirdDraws.drawRandom(BigBirdDraws.Library.GOOGLE, "google", seq, 64, 3, 4, 7, 4096);
            assertTrue(Arrays.deepEquals(hf, google), "the libraries draw the same blocks at " + seq);
        }
    }

    @Test
    void shortSequencesSwitchToFullAttentionInHuggingFaceOnly() {
        PatternSpec hf = Patterns.parse("bigbird_hf(random=3)");
        assertEquals(new DensePattern(64).layout(704, 704, 2), hf.layout(704, 704, 2), "(5 + 2·3)·64 = 704 is dense");
        BlockLayout sparse = hf.layout(705, 705, 2);
        assertTrue(sparse.hasCounts() && sparse.rowSize(0, 5) < sparse.keyBlocks(), "705 tokens are block-sparse");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Patterns.parse("bigbird_google(random=3)").layout(448, 448, 2));
        assertTrue(e.getMessage().contains("from shape (2,) into shape (3,)"), e.getMessage());
        assertEquals(12, Patterns.parse("bigbird_google(random=3)").layout(768, 768, 2).queryBlocks());
    }

    @Test
    void aLengthOffTheBlockIsDrawnAsItsPaddedLength() {
        for (String text : new String[] {"bigbird_hf(mode=train, seed=2)", "bigbird_google(seed=2)", "bigbird_hf(seed=2)"}) {
            PatternSpec p = Patterns.parse(text);
            BlockLayout padded = p.layout(1024, 1024, 3);
            BlockLayout ragged = p.layout(1000, 1000, 3);
            assertEquals(1000, ragged.keyLength());
            assertEquals(padded.queryBlocks(), ragged.queryBlocks());
            for (int h = 0; h < padded.heads(); h++) {
                assertArrayEquals(padded.rowStart(h), ragged.rowStart(h), text);
                assertArrayEquals(padded.keyBlockIndices(h), ragged.keyBlockIndices(h), text);
                assertArrayEquals(padded.counts(h), ragged.counts(h), text);
            }
        }
    }

    @Test
    void textRoundTripsWithDefaultsAndBadArgumentsAreNamed() {
        assertEquals("bigbird_hf(block=64, random=3, mode=eval, seed=0, max_pos=4096)", Patterns.parse("bigbird_hf").text());
        assertEquals(HuggingFaceBigBirdPattern.defaults(), Patterns.parse("bigbird_hf()"));
        assertEquals("bigbird_google(block=64, random=3, seed=0, max_pos=4096)", Patterns.parse("bigbird_google").text());
        for (String t : new String[] {"bigbird_hf(block=32, random=2, mode=train, seed=11, max_pos=2048)",
            "bigbird_google(block=16, random=1, seed=4294967295, max_pos=8192)"}) {
            assertEquals(t, Patterns.parse(t).text());
            assertEquals(Patterns.parse(t), Patterns.parse(Patterns.parse(t).text()));
        }
        PatternSyntaxException mode = assertThrows(PatternSyntaxException.class, () -> Patterns.parse("bigbird_hf(mode=test)"));
        assertTrue(mode.getMessage().contains("'mode' must be one of eval, train"), mode.getMessage());
        for (String bad : new String[] {"bigbird_hf(seed=-1)", "bigbird_google(seed=4294967296)", "bigbird_hf(random=-1)",
            "bigbird_google(block=0)", "bigbird_hf(max_pos=0)"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Patterns.parse(bad), bad);
            assertTrue(e.getMessage().matches("(?s).*(seed|random|block|max_pos).*"), e.getMessage());
        }
    }

    @Test
    void crossAttentionCausalAndSmallMaxPosAreRefusedWithTheReason() {
        PatternSpec hf = Patterns.parse("bigbird_hf(mode=train)");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> hf.layout(1024, 2048, 1));
        assertTrue(e.getMessage().contains("Nq=1024, Nk=2048"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> hf.layout(1024, 1024, 1, true));
        assertTrue(e.getMessage().contains("cannot be causal"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Patterns.parse("causal(bigbird_google)").layout(1024, 1024, 1));
        assertTrue(e.getMessage().contains("cannot be causal"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Patterns.parse("bigbird_hf(max_pos=2048)").layout(3072, 3072, 1));
        assertTrue(e.getMessage().contains("max_pos must be >= 3072"), e.getMessage());
        assertEquals(32, Patterns.parse("bigbird_hf(max_pos=2048)").layout(2048, 2048, 1).keyBlocks(), "2048 uses the plan");
        e = assertThrows(IllegalArgumentException.class,
                () -> Patterns.parse("bigbird_hf(block=1, mode=train, max_pos=2000000000)").layout(1024, 1024, 1));
        assertTrue(e.getMessage().contains("use a smaller max_pos"), e.getMessage());
    }

    @Test
    void layoutsAreIdenticalAcrossCallsAndHeadsAreDrawnInOrder() {
        PatternSpec p = Patterns.parse("bigbird_hf(mode=train, seed=5)");
        assertEquals(p.layout(3072, 3072, 4), p.layout(3072, 3072, 4));
        // Paper lengths draw head by head from one stream: the first heads do not depend on the head count.
        BlockLayout two = p.layout(3072, 3072, 2);
        BlockLayout four = p.layout(3072, 3072, 4);
        assertArrayEquals(two.keyBlockIndices(1), four.keyBlockIndices(1));
        List<int[]> rows = new ArrayList<>();
        for (int h = 0; h < 4; h++) {
            rows.add(four.keyBlockIndices(h));
        }
        assertFalse(Arrays.equals(rows.get(0), rows.get(1)), "heads draw different blocks");
    }
}
