package dev.starling.bench.cli;

import dev.starling.api.npy.NpyArray;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.LayoutExchange;
import dev.starling.api.plan.TokenMask;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import dev.starling.bench.draw.LayoutImage;
import dev.starling.api.io.RealFile;
import dev.starling.api.io.TouchedFiles;
import dev.starling.bench.output.StagedFiles;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code starling pattern SPEC --seq N}: statistics, a text drawing, a picture ({@code --png}) and an
 * {@code .npy} export of a layout.
 */
@Command(name = "pattern", mixinStandardHelpOptions = true,
        description = {"Materialise a pattern and print blocks, allowed pairs, density and work saved against dense.",
            "--show draws it as text, --png as a picture (global, window and random blocks in colours), --npy exports "
                + "it as a block mask, --export as FlexAttention, SciPy BSR or ONNX Runtime arrays."})
final class PatternCommand implements Callable<Integer> {
    /** Largest block grid {@code --show} draws. */
    static final int MAX_SHOW = 128;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "SPEC", description = "pattern text, e.g. 'bigbird(block=64, window=3, global=2, random=3)'")
    String patternText;

    @Option(names = "--seq", required = true, paramLabel = "N", description = "query length Nq")
    int seq;

    @Option(names = "--kv-seq", paramLabel = "M", description = "key length Nk (default: Nq)")
    Integer kvSeq;

    @Option(names = "--heads", defaultValue = "1", paramLabel = "H", description = "query heads (default: ${DEFAULT-VALUE})")
    int heads;

    @Option(names = "--causal", description = "apply the causal mask (same as writing causal(SPEC))")
    boolean causal;

    @Option(names = "--show", description = "draw the block layout as text (up to " + MAX_SHOW + "x" + MAX_SHOW + " blocks)")
    boolean show;

    @Option(names = "--npy", paramLabel = "FILE", description = "write the layout as uint8 [heads, queryBlocks, keyBlocks]: "
            + "0 = not allowed, 1 = allowed, c > 1 = allowed with block count c (int32 when a count exceeds 255)")
    Path npy;

    @Option(names = "--png", paramLabel = "FILE.png", description = "draw the layout as a PNG: a panel per head (up to "
            + LayoutImage.MAX_PANELS + "), global, window and random blocks in colours, downsampled beyond "
            + LayoutImage.PANEL + " blocks a side")
    Path png;

    @Option(names = "--export", paramLabel = "FORMAT", converter = FormatConverter.class,
            description = "with --to: write the layout for another library: flex (FlexAttention BlockMask: kv_num_blocks, "
                    + "kv_indices, full_kv_num_blocks, full_kv_indices), bsr (SciPy: indptr, indices) or ort (ONNX Runtime "
                    + "SparseAttention: block_row_indices, block_col_indices), int32, and PREFIX.json describing them")
    LayoutExchange.Format export;

    @Option(names = "--to", paramLabel = "PREFIX", description = "with --export: write PREFIX.json and PREFIX.NAME.npy per "
            + "array; read back with 'layout(file=PREFIX.json, block=B)'")
    Path exportTo;

    /** {@code flex}, {@code bsr} or {@code ort}. */
    static final class FormatConverter implements CommandLine.ITypeConverter<LayoutExchange.Format> {
        @Override
        public LayoutExchange.Format convert(String value) {
            try {
                return LayoutExchange.Format.parse(value);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException("--export: " + e.getMessage());
            }
        }
    }

    @Override
    public Integer call() throws IOException {
        if (seq < 1 || (kvSeq != null && kvSeq < 1) || heads < 1) {
            throw new IllegalArgumentException("--seq, --kv-seq and --heads must be >= 1");
        }
        int nk = kvSeq == null ? seq : kvSeq;
        PatternSpec pattern = Patterns.parse(patternText);
        RealFile[] targets = checkOutputs(pattern);
        long t0 = System.nanoTime();
        BlockLayout layout = pattern.layout(seq, nk, heads, causal);
        double millis = (System.nanoTime() - t0) / 1e6;
        PrintWriter out = spec.commandLine().getOut();
        describe(out, pattern, layout, heads, millis);
        if (show) {
            draw(out, layout);
        }
        LayoutImage image = png == null ? null : LayoutImage.of(pattern, layout, heads);
        java.util.List<LayoutExchange.Array> exported = export == null ? null : LayoutExchange.export(layout, heads, export);
        if (npy != null || png != null || exported != null) {
            try (StagedFiles files = new StagedFiles()) {
                if (npy != null) {
                    files.stage(targets[0], toNpy(layout, heads)::write);
                }
                if (image != null) {
                    files.stage(targets[1], image::writePng);
                }
                if (exported != null) {
                    byte[] json = LayoutExchange.describe(layout, heads, export, exportTo)
                            .getBytes(java.nio.charset.StandardCharsets.UTF_8);
                    files.stage(targets[2], o -> o.write(json));
                    for (int i = 0; i < exported.size(); i++) {
                        LayoutExchange.Array a = exported.get(i);
                        files.stage(targets[3 + i], NpyArray.ofInts(a.values(), a.shape())::write);
                    }
                }
                files.commit();
            }
        }
        if (exported != null) {
            java.util.List<Path> written = LayoutExchange.files(exportTo, export);
            out.printf("wrote %s for %s: %s%n", written.get(0), export.label(), written.subList(1, written.size()).stream()
                    .map(Path::toString).collect(java.util.stream.Collectors.joining(", ")));
        }
        if (npy != null) {
            out.printf("wrote %s: %s [%d, %d, %d]%n", npy, layout.maxCount() > 255 ? "int32" : "uint8", heads,
                    layout.queryBlocks(), layout.keyBlocks());
        }
        if (image != null) {
            out.printf("wrote %s: %d x %d pixels, %s, %s%n", png, image.width(), image.height(),
                    image.panels() == 1 ? "one panel" : image.panels() + " panels (one per head)", image.scale());
            if (image.headsLeftOut() > 0) {
                out.printf("  heads 0-%d drawn; %d of %d heads left out (at most %d panels)%n", image.panels() - 1,
                        image.headsLeftOut(), heads, LayoutImage.MAX_PANELS);
            }
        }
        out.flush();
        return 0;
    }

    /**
     * Refuses outputs that cannot be written, that name an input or each other, before anything is built.
     *
     * @return the real files of {@code --npy} and {@code --png}, {@code null} for one not given
     */
    private RealFile[] checkOutputs(PatternSpec pattern) throws IOException {
        if ((export == null) != (exportTo == null)) {
            throw new IllegalArgumentException("--export and --to go together: give a format and a path prefix, e.g. "
                    + "--export flex --to out/mask");
        }
        TouchedFiles files = new TouchedFiles("pattern");
        RunCommand.layoutFiles(pattern, files);
        java.util.List<RealFile> targets = new java.util.ArrayList<>();
        targets.add(npy == null ? null : files.output("--npy", npy));
        targets.add(png == null ? null : files.output("--png", png));
        if (export != null) {
            for (Path p : LayoutExchange.files(exportTo, export)) {
                targets.add(files.output("--to", p));
            }
        }
        return targets.toArray(RealFile[]::new);
    }

    /** Prints the layout's statistics: blocks, allowed blocks and pairs, density, work saved, size and build time. */
    static void describe(PrintWriter out, PatternSpec pattern, BlockLayout layout, int heads, double millis) {
        long blocks = (long) layout.queryBlocks() * layout.keyBlocks();
        long nnz = layout.nnzOverHeads(heads);
        long pairs = TokenMask.of(layout, heads).allowedPairs();
        double densePairs = (double) layout.queryLength() * layout.keyLength() * heads;
        out.printf("pattern        %s%s%n", pattern.text(), layout.causal() ? " (causal)" : "");
        out.printf("lengths        Nq=%d, Nk=%d, %d head(s), %s layout%n", layout.queryLength(), layout.keyLength(), heads,
                layout.isShared() ? "one shared" : "per-head");
        out.printf("blocks         %d x %d of %d tokens%n", layout.queryBlocks(), layout.keyBlocks(), layout.queryBlock());
        out.printf("allowed blocks %d of %d (%.2f%% per head on average)%n", nnz, blocks * heads, 100.0 * nnz / (blocks * heads));
        out.printf("allowed pairs  %d (token level%s)%n", pairs, layout.causal() ? ", causal" : "");
        out.printf("density        %.4f%%%n", 100.0 * pairs / densePairs);
        out.printf("work saved     %.2f%% against dense attention (%.1fx less)%n", 100.0 * (1 - pairs / densePairs),
                pairs == 0 ? Double.POSITIVE_INFINITY : densePairs / pairs);
        if (layout.hasCounts()) {
            long repeated = 0;
            for (int h = 0; h < heads; h++) {
                for (int c : layout.counts(layout.headIndex(h))) {
                    repeated += c > 1 ? 1 : 0;
                }
            }
            out.printf("block counts   %d allowed blocks counted more than once (largest count %d)%n", repeated,
                    layout.maxCount());
        }
        out.printf("layout         %.1f KB, built in %.1f ms%n", layout.memoryBytes() / 1024.0, millis);
    }

    /**
     * Draws the layout as text, one character per block, up to {@link #MAX_SHOW} blocks a side: {@code #}
     * allowed, {@code .} not, and for a block counted {@code c > 1} times (block counts) the digit {@code c},
     * or {@code +} from 10 on.
     */
    static void draw(PrintWriter out, BlockLayout layout) {
        if (layout.queryBlocks() > MAX_SHOW || layout.keyBlocks() > MAX_SHOW) {
            out.printf("(--show draws up to %dx%d blocks; this layout has %dx%d)%n", MAX_SHOW, MAX_SHOW,
                    layout.queryBlocks(), layout.keyBlocks());
            return;
        }
        for (int h = 0; h < layout.heads(); h++) {
            out.println(layout.isShared() ? "layout (all heads), rows = query blocks, columns = key blocks:"
                    : "head " + h + ":");
            for (int qb = 0; qb < layout.queryBlocks(); qb++) {
                char[] row = new char[layout.keyBlocks()];
                java.util.Arrays.fill(row, '.');
                for (int p = layout.rowBegin(h, qb); p < layout.rowEnd(h, qb); p++) {
                    row[layout.keyBlock(h, p)] = glyph(layout.count(h, p));
                }
                out.println("  " + new String(row));
            }
        }
        if (layout.hasCounts()) {
            out.println("(a digit: a block counted that many times in the softmax; + for 10 or more)");
        }
    }

    private static char glyph(int count) {
        return count == 1 ? '#' : count < 10 ? (char) ('0' + count) : '+';
    }

    /**
     * The layout as {@code uint8 [heads, queryBlocks, keyBlocks]} (0 not allowed, else the block's count), or
     * {@code int32} when a count exceeds 255: head {@code h} is query head {@code h}'s layout.
     */
    static NpyArray toNpy(BlockLayout layout, int heads) {
        if (layout.maxCount() > 255) {
            return NpyArray.ofInts(layout.countMask(heads), heads, layout.queryBlocks(), layout.keyBlocks());
        }
        return NpyArray.ofBytes(layout.maskBytes(heads), heads, layout.queryBlocks(), layout.keyBlocks());
    }
}
