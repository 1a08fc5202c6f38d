package dev.starling.bench.compare;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.Precision;
import dev.starling.api.pattern.Patterns;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;

/** The words, lines and files of {@code starling compare}'s report, on made-up cells (no timing). */
class CompareReportTest {

    private static CompareRun.Cell cell(String name, boolean dense, int n, double ms) {
        return cell(name, dense, CompareRun.Pass.FORWARD, n, ms);
    }

    private static CompareRun.Cell cell(String name, boolean dense, CompareRun.Pass pass, int n, double ms) {
        return cell(name, dense, pass, Precision.FP32, n, ms);
    }

    private static CompareRun.Cell cell(String name, boolean dense, CompareRun.Pass pass, Precision precision, int n,
                                        double ms) {
        return new CompareRun.Cell(name, dense, pass, precision, n, "ok", ms, ms * 0.9, ms * 1.2, 5, 3, 1.0, 1.0, 3L << 20);
    }

    private static final CompareRun.Config CONFIG = new CompareRun.Config(Patterns.parse("bigbird(block=64)"), 1, 8, 64,
            new int[] {1024, 4096}, List.of(), true, 5, 20, 1L << 33);

    @Test
    void theMachineShareIsNeverAboveOneHundredPercent() {
        MachineRate.Rate rate = new MachineRate.Rate("libtorch matmul", Precision.FP32, 34.9, "");
        assertEquals("best sparse useful rate 28.0 GFLOP/s = 80% of the machine's 34.9 GFLOP/s (libtorch matmul)",
                CompareMain.shareLine(28.0, rate, false));
        String over = CompareMain.shareLine(100.2, rate, false);
        assertTrue(!over.contains("%") && over.contains("other load"), "287% would be impossible: " + over);
        List<MachineRate.Rate> best = MachineRate.faster(
                List.of(new MachineRate.Rate("a", Precision.FP32, 150, ""), new MachineRate.Rate("b", Precision.FP32,
                        Double.NaN, "failed")),
                List.of(new MachineRate.Rate("a", Precision.FP32, 35, ""), new MachineRate.Rate("b", Precision.FP32, 90, "")));
        assertEquals(List.of(150.0, 90.0), best.stream().map(MachineRate.Rate::gflops).toList(),
                "per library the faster of before and after");
    }

    @Test
    void aSlowerSparseBackendIsCalledSlowerNotAFractionFaster() {
        assertEquals("5.0x slower", CompareMain.speed(160.5, 32.1));
        assertEquals("10.0x faster", CompareMain.speed(3.21, 32.1));
        assertEquals("1.0x faster", CompareMain.speed(7, 7));
    }

    @Test
    void theCheckLineSaysWhoAgreedAndOnWhatCase() {
        String line = CompareReport.checkLine(List.of(new CompareRun.Check("reference", false, Precision.FP32, "agreed"),
                new CompareRun.Check("torch-sdpa", true, Precision.FP32, "agreed")), 1024, 7, CONFIG);
        assertTrue(line.startsWith("oracle check: all 2 contenders agreed with dense float64 attention on N=1,024, B=1, H=8, "
                + "D=64, seed 7 (sparse backends over bigbird(block=64, window=3, global=2, random=3, seed=0)"), line);

        line = CompareReport.checkLine(List.of(new CompareRun.Check("reference", false, Precision.FP32, "agreed"),
                new CompareRun.Check("broken", false, Precision.FP32, "WRONG: max error 0.5"),
                new CompareRun.Check("nd4j-dense", true, Precision.FP32, "not checked: skipped: too big")), 1024, 7, CONFIG);
        assertTrue(line.startsWith("oracle check: 1 of 3 contenders agreed"), line);
        assertTrue(line.contains("broken WRONG: max error 0.5") && line.contains("nd4j-dense not checked"), line);
        assertEquals(1, line.lines().count());
    }

    @Test
    void anUnknownBackendNameIsRefusedWithTheNamesFound() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CompareRun.requireKnown(List.of("reference", "nope"), List.of("cuda", "nd4j", "reference")));
        assertEquals("--backends: no backend named 'nope'; found: cuda, nd4j, reference", e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> CompareRun.requireKnown(List.of("torch-sdpa"), List.of("reference")));
        assertTrue(e.getMessage().contains("not backends"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> CompareRun.requireKnown(List.of("nd4j-dense"), List.of("reference")));
        assertTrue(e.getMessage().contains("not backends"), e.getMessage());
        CompareRun.requireKnown(List.of("reference"), List.of("cuda", "reference"));
        CompareRun.requireKnown(List.of(), List.of("reference"));
    }

    @Test
    void smallMemoryIsNotRoundedToZero() {
        assertEquals("0.07", CompareReport.megabytes(70_000));
        assertEquals("2.5", CompareReport.megabytes(5L << 19));
        assertEquals("144", CompareReport.megabytes(144L << 20));
    }

    @Test
    void theTableHasALegendForEveryColumnThatNeedsOne() {
        java.io.StringWriter text = new java.io.StringWriter();
        CompareReport.table(new java.io.PrintWriter(text), List.of(cell("reference", false, 1024, 12.5)));
        String out = text.toString();
        for (String column : new String[] {"median ms", "spread", "GFLOP/s", "x fastest", "peak MB"}) {
            assertTrue(out.lines().anyMatch(l -> l.startsWith("  " + column + " ")), column + " in:\n" + out);
        }
        assertTrue(out.contains("time / the fastest contender's time at this length"), out);
        assertTrue(out.contains("allowed pairs for sparse") && out.contains("all N·N pairs for dense"), out);
        assertTrue(out.contains("(5) = 5 timed calls"), out);
        assertTrue(out.contains("11.3-15.0 (5)") && out.contains(" 3.0"), out);
    }

    @Test
    void thePlotIsAPngOfTheDocumentedSize() throws Exception {
        ByteArrayOutputStream png = new ByteArrayOutputStream();
        CompareReport.plot(png, List.of(cell("reference", false, 1024, 12.5), cell("reference", false, 4096, 50),
                cell("torch-sdpa", true, 1024, 30), cell("torch-sdpa", true, 4096, 400)), "a title");
        BufferedImage image = ImageIO.read(new ByteArrayInputStream(png.toByteArray()));
        assertEquals(dev.starling.bench.draw.ComparePlot.WIDTH, image.getWidth());
        assertEquals(dev.starling.bench.draw.ComparePlot.HEIGHT, image.getHeight());
    }

    @Test
    void theLegendSaysHowItWarmsUp() {
        java.io.StringWriter text = new java.io.StringWriter();
        CompareReport.table(new java.io.PrintWriter(text), List.of(cell("reference", false, 1024, 12.5)));
        String out = text.toString();
        assertTrue(out.contains("after a warm-up: calls until at least 1 s and 3 calls"), out);
        assertTrue(!out.contains("pass "), "no pass column without --backward: " + out);
    }

    @Test
    void withBackwardTheTableHasAPassColumnTheLegendItsWorkAndTheRatiosAreReported() {
        List<CompareRun.Cell> cells = List.of(cell("vector", false, CompareRun.Pass.FORWARD, 16384, 100),
                cell("vector", false, CompareRun.Pass.FORWARD_BACKWARD, 16384, 310),
                cell("torch-sdpa", true, CompareRun.Pass.FORWARD, 16384, 3000),
                cell("torch-sdpa", true, CompareRun.Pass.FORWARD_BACKWARD, 16384, 9000));
        java.io.StringWriter text = new java.io.StringWriter();
        CompareReport.table(new java.io.PrintWriter(text), cells);
        String out = text.toString();
        assertTrue(out.lines().anyMatch(l -> l.startsWith("vector") && l.contains(" fwd+bwd ")), out);
        assertTrue(out.contains("backward as 2.5x the forward's useful") && out.contains("fwd+bwd = 3.5x the forward's FLOPs"),
                out);
        List<String> ratios = CompareMain.backwardRatios(cells);
        assertEquals(2, ratios.size(), ratios.toString());
        assertTrue(ratios.get(0).startsWith("vector N=16,384: fwd+bwd / fwd = 3.10x (sparse"), ratios.get(0));
        assertTrue(ratios.get(1).startsWith("torch-sdpa N=16,384: fwd+bwd / fwd = 3.00x (dense peer"), ratios.get(1));
    }

    @Test
    void theCsvNamesThePassOfEveryRow() throws Exception {
        ByteArrayOutputStream csv = new ByteArrayOutputStream();
        CompareReport.csv(csv, List.of(cell("vector", false, CompareRun.Pass.FORWARD_BACKWARD, 1024, 3)));
        List<String> rows = csv.toString(java.nio.charset.StandardCharsets.UTF_8).lines().toList();
        assertTrue(rows.get(0).startsWith("contender,kind,pass,precision,length,status,"), rows.get(0));
        assertTrue(rows.get(1).startsWith("vector,sparse,fwd+bwd,fp32,1024,\"ok\","), rows.get(1));
    }

    @Test
    void aHeapTooSmallForTheLongestLengthIsOneLineWithTheOptionToUse() {
        CompareRun.Config million = new CompareRun.Config(Patterns.parse("bigbird(block=64)"), 1, 8, 64,
                new int[] {16384, 1_048_576}, List.of(), false, 5, 20, 1L << 33);
        NotEnoughMemoryException e = assertThrows(NotEnoughMemoryException.class,
                () -> CompareRun.requireHeap(million, 6L << 30));
        assertTrue(e.getMessage().startsWith("N=1,048,576 needs about 10.0 GiB of Java heap (q, k, v and out of 2.0 GiB each"),
                e.getMessage());
        assertTrue(e.getMessage().endsWith("run with STARLING_JAVA_OPTS=-Xmx11g ./starling compare ..."), e.getMessage());
        CompareRun.requireHeap(million, 12L << 30);
        CompareRun.Config backward = new CompareRun.Config(million.pattern(), 1, 8, 64, million.lengths(), List.of(), false,
                5, 20, 1L << 33, true, 60);
        assertThrows(NotEnoughMemoryException.class, () -> CompareRun.requireHeap(backward, 12L << 30));
        CompareRun.Config huge = new CompareRun.Config(million.pattern(), 8, 8, 64, million.lengths(), List.of(), false,
                5, 20, 1L << 33);
        IllegalArgumentException tooLong = assertThrows(IllegalArgumentException.class,
                () -> CompareRun.requireHeap(huge, Long.MAX_VALUE));
        assertTrue(tooLong.getMessage().contains("longer than a Java array"), tooLong.getMessage());
    }

    /** Issue 25: with several precisions the table, the CSV, the plot and the headlines name each row's. */
    @Test
    void severalPrecisionsGetAPrecisionColumnAndHeadlinesWithinOnePrecision() throws Exception {
        List<CompareRun.Cell> cells = List.of(cell("native", false, CompareRun.Pass.FORWARD, Precision.FP32, 1024, 6),
                cell("torch-sdpa", true, CompareRun.Pass.FORWARD, Precision.FP32, 1024, 12),
                new CompareRun.Cell("vector", false, CompareRun.Pass.FORWARD, Precision.BF16, 0, "no bf16 (runs fp32)",
                        Double.NaN, Double.NaN, Double.NaN, 0, 0, Double.NaN, Double.NaN, 0),
                cell("native", false, CompareRun.Pass.FORWARD, Precision.BF16, 1024, 3),
                cell("torch-sdpa", true, CompareRun.Pass.FORWARD, Precision.BF16, 1024, 4));
        java.io.StringWriter text = new java.io.StringWriter();
        CompareReport.table(new java.io.PrintWriter(text), cells);
        String out = text.toString();
        assertTrue(out.lines().findFirst().orElseThrow().contains(" prec "), out);
        assertTrue(out.lines().anyMatch(l -> l.startsWith("native") && l.contains(" bf16 ") && l.contains("3.0")), out);
        assertTrue(out.lines().anyMatch(l -> l.startsWith("vector") && l.contains(" bf16 ") && l.endsWith("no bf16 (runs fp32)")),
                out);
        assertTrue(out.contains("  precision   fp32 = float32 inputs"), out);

        ByteArrayOutputStream csv = new ByteArrayOutputStream();
        CompareReport.csv(csv, cells);
        List<String> rows = csv.toString(java.nio.charset.StandardCharsets.UTF_8).lines().toList();
        assertTrue(rows.get(3).startsWith("vector,sparse,fwd,bf16,0,\"no bf16 (runs fp32)\","), rows.get(3));
        assertTrue(rows.get(4).startsWith("native,sparse,fwd,bf16,1024,\"ok\","), rows.get(4));

        java.io.StringWriter heads = new java.io.StringWriter();
        java.util.Map<Precision, MachineRate.Rate> rates = java.util.Map.of(
                Precision.FP32, new MachineRate.Rate("libtorch matmul", Precision.FP32, 300, ""),
                Precision.BF16, new MachineRate.Rate("libtorch matmul bf16", Precision.BF16, 1200, ""));
        CompareMain.headlines(new java.io.PrintWriter(heads), cells, rates, true);
        String h = heads.toString();
        assertTrue(h.contains("N=1,024 fp32: best sparse backend 6.0 ms, fastest dense peer 12.0 ms: sparse is 2.0x faster"), h);
        assertTrue(h.contains("N=1,024 bf16: best sparse backend 3.0 ms, fastest dense peer 4.0 ms: sparse is 1.3x faster"), h);
        assertTrue(h.contains("best sparse fp32 useful rate 1.0 GFLOP/s = 0% of the machine's fp32 300.0 GFLOP/s"), h);
        assertTrue(h.contains("best sparse bf16 useful rate 1.0 GFLOP/s = 0% of the machine's bf16 1200.0 GFLOP/s "
                + "(libtorch matmul bf16)"), h);

        java.io.StringWriter one = new java.io.StringWriter();
        CompareReport.table(new java.io.PrintWriter(one), List.of(cell("reference", false, 1024, 12.5)));
        assertTrue(!one.toString().contains("prec") && !one.toString().contains("bf16"), "fp32 alone: as before: " + one);
    }

    @Test
    void theMachineLineSaysWhichBf16UnitsTheCpuHasAndWhenBf16IsNoFaster() {
        assertEquals("CPU flags: amx_bf16 avx512_bf16", MachineRate.bf16Units("flags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile"));
        assertEquals("CPU flags: avx512_bf16", MachineRate.bf16Units("flags : fpu avx512f avx512_bf16"));
        assertTrue(MachineRate.bf16Units("flags : fpu avx2").startsWith("CPU flags: neither"));
        java.util.Map<Precision, MachineRate.Rate> slow = java.util.Map.of(
                Precision.FP32, new MachineRate.Rate("libtorch matmul", Precision.FP32, 300, ""),
                Precision.BF16, new MachineRate.Rate("libtorch matmul bf16", Precision.BF16, 80, ""));
        assertTrue(MachineRate.slowerBf16(slow).contains("no fast bf16 path"), MachineRate.slowerBf16(slow));
        assertEquals(null, MachineRate.slowerBf16(java.util.Map.of(Precision.BF16, slow.get(Precision.BF16))));
    }

    @Test
    void aContenderWithoutAPrecisionIsListedNotTimedInIt() {
        Contender fp32Only = new DenseNd4jPeer(1L << 30);
        assertEquals("no bf16 (runs fp32)", CompareRun.lacks(fp32Only, Precision.BF16));
        assertEquals(null, CompareRun.lacks(fp32Only, Precision.FP32));
        assertEquals(null, CompareRun.lacks(new TorchSdpaPeer(), Precision.BF16));
        assertThrows(IllegalArgumentException.class, () -> new CompareRun.Config(CONFIG.pattern(), 1, 8, 64, CONFIG.lengths(),
                List.of(), true, 5, 20, 1L << 33, false, 60, List.of(Precision.BF16, Precision.FP32)), "out of order");
        assertThrows(IllegalArgumentException.class, () -> new CompareRun.Config(CONFIG.pattern(), 1, 8, 64, CONFIG.lengths(),
                List.of(), true, 5, 20, 1L << 33, false, 60, List.of(Precision.FP16)), "not timed by compare");
    }
}
