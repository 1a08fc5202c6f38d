package dev.starling.bench.cli;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.ElementType;
import dev.starling.api.PlanOptions;
import dev.starling.api.SparseAttention;
import dev.starling.api.Starling;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.npy.NpyArray;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import dev.starling.api.selection.BackendSelector;
import dev.starling.api.pattern.CausalPattern;
import dev.starling.api.pattern.ExplicitPattern;
import dev.starling.api.pattern.UnionPattern;
import dev.starling.api.io.RealFile;
import dev.starling.api.io.TouchedFiles;
import dev.starling.bench.compare.NotEnoughMemoryException;
import dev.starling.bench.output.StagedFiles;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code starling run}: attention on NumPy files. Inputs are C-order arrays in the layout {@code --layout}
 * names ({@code bhsd}, the default: {@code q [B, Hq, Nq, D]}, {@code k [B, Hkv, Nk, D]},
 * {@code v [B, Hkv, Nk, Dv]}; {@code bshd}: {@code [B, N, H, D]} each), float32, float16 ({@code <f2}),
 * bfloat16 bits ({@code <u2}) or float64 (rounded to float32). One line on stderr per input says how it was
 * read before anything is computed. The output is float32 in the same layout, the optional LSE
 * {@code [B, Hq, Nq]}; gradients are float32 in the layout too.
 */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Run block-sparse attention on .npy files ([B, H, N, D] or, with --layout bshd, [B, N, H, D]; "
                + "float32, float16, bfloat16 as uint16, or float64).")
final class RunCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--q", required = true, paramLabel = "FILE", description = "queries [B, Hq, Nq, D] (bshd: [B, Nq, Hq, D])")
    Path qFile;
    @Option(names = "--k", required = true, paramLabel = "FILE", description = "keys [B, Hkv, Nk, D] (bshd: [B, Nk, Hkv, D])")
    Path kFile;
    @Option(names = "--v", required = true, paramLabel = "FILE", description = "values [B, Hkv, Nk, Dv] (bshd: [B, Nk, Hkv, Dv])")
    Path vFile;
    @Option(names = "--layout", paramLabel = "bhsd|bshd", converter = LayoutConverter.class,
            description = "layout of every input and output: bhsd [B, H, N, D] (default) or bshd [B, N, H, D]")
    TensorLayout layout = TensorLayout.BHSD;

    @Option(names = "--option", paramLabel = "NAME=VALUE",
            description = "a plan option of the backend, e.g. threads=2 (repeatable; `starling backends` lists them)")
    List<String> planOptions = new java.util.ArrayList<>();

    @Option(names = "--pattern", required = true, paramLabel = "SPEC", description = "pattern text")
    String patternText;
    @Option(names = "--backend", paramLabel = "NAME", description = "backend name (default: selection by priority)")
    String backend;
    @Option(names = "--causal", description = "apply the causal mask (j <= i + Nk - Nq)")
    boolean causal;
    @Option(names = "--scale", paramLabel = "X", description = "score scale (default: 1/sqrt(D))")
    Float scale;
    @Option(names = "--key-lengths", split = ",", paramLabel = "a,b,...", description = "valid keys per batch entry")
    int[] keyLengths;
    @Option(names = "--query-lengths", split = ",", paramLabel = "a,b,...", description = "valid queries per batch entry")
    int[] queryLengths;
    @Option(names = "--out", required = true, paramLabel = "FILE", description = "output [B, Hq, Nq, Dv] (bshd: [B, Nq, Hq, Dv]), float32")
    Path outFile;
    @Option(names = "--lse", paramLabel = "FILE", description = "also write the log-sum-exp [B, Hq, Nq], float32")
    Path lseFile;
    @Option(names = "--dout", paramLabel = "FILE",
            description = "gradient of a loss w.r.t. the output [B, Hq, Nq, Dv]: also run the backward pass")
    Path doutFile;
    @Option(names = "--dq", paramLabel = "FILE", description = "with --dout: write dL/dq [B, Hq, Nq, D], float32")
    Path dqFile;
    @Option(names = "--dk", paramLabel = "FILE", description = "with --dout: write dL/dk [B, Hkv, Nk, D], float32")
    Path dkFile;
    @Option(names = "--dv", paramLabel = "FILE", description = "with --dout: write dL/dv [B, Hkv, Nk, Dv], float32")
    Path dvFile;

    @Override
    public Integer call() throws IOException {
        PrintWriter err = spec.commandLine().getErr();
        // Every file check comes first, so nothing is read, computed or written for a run that cannot finish.
        PatternSpec pattern = Patterns.parse(patternText);
        boolean backward = doutFile != null;
        if (backward != (dqFile != null) || backward != (dkFile != null) || backward != (dvFile != null)) {
            throw new IllegalArgumentException("--dout, --dq, --dk and --dv go together: give all four to run the "
                    + "backward pass, or none");
        }
        TouchedFiles files = new TouchedFiles("run");
        files.input("--q", qFile);
        files.input("--k", kFile);
        files.input("--v", vFile);
        if (backward) {
            files.input("--dout", doutFile);
        }
        layoutFiles(pattern, files);
        RealFile outTarget = files.output("--out", outFile);
        RealFile lseTarget = lseFile == null ? null : files.output("--lse", lseFile);
        List<RealFile> gradientTargets = backward ? List.of(files.output("--dq", dqFile), files.output("--dk", dkFile),
                files.output("--dv", dvFile)) : List.of();

        long heapNeeded = heapNeeded(qFile, kFile, vFile, backward);
        try {
            return compute(pattern, backward, outTarget, lseTarget, gradientTargets, err);
        } catch (OutOfMemoryError e) {
            if (isThreadLimit(e)) {
                throw e;
            }
            throw new NotEnoughMemoryException(heapAdvice(e, heapNeeded, Runtime.getRuntime().maxMemory()));
        }
    }

    /**
     * About how much heap a run takes, from the shapes in the input headers: the inputs as read and as
     * float32, the output and LSE and their staged copies, and with {@code --dout} the output gradient and
     * the three gradients with their copies, plus a quarter (at least 256 MiB) for the backend's scratch.
     *
     * @return bytes; 0 when a header cannot be read (the run then reports that instead)
     */
    static long heapNeeded(Path q, Path k, Path v, boolean backward) {
        try {
            int[] qs = header(q).shape();
            int[] vs = header(v).shape();
            long qn = product(qs);
            long kn = product(header(k).shape());
            long vn = product(vs);
            if (qs.length != 4 || vs.length != 4) {
                return 0;
            }
            long out = (long) qs[0] * qs[1] * qs[2] * vs[3];
            long lse = (long) qs[0] * qs[1] * qs[2];
            long inputs = qn + kn + vn;
            long floats = 3 * inputs + 2 * (out + lse);   // raw (up to 8 bytes: 2 floats) + float32 inputs, outputs + copies
            if (backward) {
                floats += 3 * out + 2 * inputs;             // dOut raw + float32, gradients + copies
            }
            long tensors = 4 * floats;
            return tensors + Math.max(256L << 20, tensors / 4);
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }

    private static NpyArray.Header header(Path file) throws IOException {
        try (java.io.InputStream in = java.nio.file.Files.newInputStream(file)) {
            return NpyArray.readHeader(in, file.toString());
        }
    }

    private static long product(int[] shape) {
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }

    /** Whether the JVM could not start a thread (the system's limit on threads), which is not the heap. */
    static boolean isThreadLimit(OutOfMemoryError e) {
        return e.getMessage() != null && e.getMessage().contains("native thread");
    }

    /** The one line a heap too small for {@code run} gets: what the problem needs and the option that gives it. */
    static String heapAdvice(OutOfMemoryError e, long needed, long maxHeap) {
        String cause = "out of memory (" + (e.getMessage() == null ? "OutOfMemoryError" : e.getMessage()) + ")";
        if (needed <= 0) {
            return cause + " with this JVM's " + String.format(Locale.ROOT, "%.1f", maxHeap / 1073741824.0) + " GiB of "
                    + "heap; give it more with STARLING_JAVA_OPTS=-Xmx<size> ./starling run ...";
        }
        long suggest = Math.max((long) Math.ceil((Math.max(needed, maxHeap) + (1L << 30)) / (double) (1L << 30)), 1);
        return String.format(Locale.ROOT, "%s: this problem needs about %.1f GiB of Java heap (its tensors, their staged "
                + "copies and the backend's scratch), this JVM has %.1f GiB: run with STARLING_JAVA_OPTS=-Xmx%dg "
                + "./starling run ...", cause, needed / 1073741824.0, maxHeap / 1073741824.0, suggest);
    }

    private Integer compute(PatternSpec pattern, boolean backward, RealFile outTarget, RealFile lseTarget,
                            List<RealFile> gradientTargets, PrintWriter err) throws IOException {
        // How each input was read: printed once every check has passed, before the compute.
        List<String> readAs = new java.util.ArrayList<>();
        Tensor q = read("q", qFile, layout, readAs);
        Tensor k = read("k", kFile, layout, readAs);
        Tensor v = read("v", vFile, layout, readAs);
        AttentionProblem.Builder b = AttentionProblem.builder()
                .batch(q.batch()).heads(q.heads()).kvHeads(k.heads())
                .queryLength(q.length()).keyLength(k.length())
                .headDim(q.dim()).valueDim(v.dim()).causal(causal)
                .keyLengths(keyLengths).queryLengths(queryLengths);
        if (scale != null) {
            b.scale(scale);
        }
        AttentionProblem problem = b.build();
        Tensor out = Tensor.zeros(layout, problem.batch(), problem.queryHeads(), problem.queryLength(),
                problem.valueDim());
        problem.checkInputs(q, k, v, out, null);
        Tensor dOut = backward ? read("dout", doutFile, layout, readAs) : null;
        Tensor dq = backward ? Tensor.zeros(layout, q.batch(), q.heads(), q.length(), q.dim()) : null;
        Tensor dk = backward ? Tensor.zeros(layout, k.batch(), k.heads(), k.length(), k.dim()) : null;
        Tensor dv = backward ? Tensor.zeros(layout, v.batch(), v.heads(), v.length(), v.dim()) : null;
        float[] lse = lseFile != null || backward ? new float[problem.lseSize()] : null;
        if (backward) {
            problem.checkGradients(q, k, v, out, lse, dOut, dq, dk, dv);
        }
        BlockLayout blocks = Starling.layout(problem, pattern);
        BackendSelector selector = BackendSelector.discover();
        SparseAttention chosen;
        if (backend != null) {
            chosen = selector.byName(backend.toLowerCase());
            chosen.capabilities().unsupported(problem, lse != null, backward).ifPresent(why -> {
                throw new UnsupportedOperationException("backend '" + backend + "' " + why);
            });
        } else {
            chosen = selector.select(problem, lse != null, backward);
        }
        PlanOptions options = PlanOptions.of(chosen, planOptions.toArray(String[]::new));
        readAs.forEach(err::println);
        err.flush();
        long t0 = System.nanoTime();
        try (AttentionPlan plan = chosen.plan(problem, blocks, options)) {
            plan.forward(q, k, v, out, lse);
            if (backward) {
                plan.backward(q, k, v, out, lse, dOut, dq, dk, dv);
            }
        }
        double millis = (System.nanoTime() - t0) / 1e6;
        // Both files are written in full beside their targets first; only then are they renamed into place.
        try (StagedFiles staged = new StagedFiles()) {
            NpyArray outArray = NpyArray.ofFloats(out.data(), fileShape(out, layout));
            staged.stage(outTarget, outArray::write);
            if (lseTarget != null) {
                NpyArray lseArray = NpyArray.ofFloats(lse, problem.batch(), problem.queryHeads(), problem.queryLength());
                staged.stage(lseTarget, lseArray::write);
            }
            if (backward) {
                List<Tensor> gradients = List.of(dq, dk, dv);
                for (int g = 0; g < gradients.size(); g++) {
                    Tensor t = gradients.get(g);
                    NpyArray a = NpyArray.ofFloats(t.data(), fileShape(t, layout));
                    staged.stage(gradientTargets.get(g), a::write);
                }
            }
            staged.commit();
        }
        PrintWriter out2 = spec.commandLine().getOut();
        out2.printf("%s on %s: %s, %.1f ms%s; wrote %s%s%s%n", pattern.text(), chosen.name(), problem, millis,
                backward ? " (forward + backward)" : "", outFile, lseFile != null ? ", " + lseFile : "",
                backward ? ", " + dqFile + ", " + dkFile + ", " + dvFile : "");
        out2.flush();
        return 0;
    }

    /**
     * Adds the files that {@code layout(file=...)} parts of the pattern were read from, so an
     * output cannot replace them either.
     */
    static void layoutFiles(PatternSpec pattern, TouchedFiles files) throws IOException {
        if (pattern instanceof UnionPattern u) {
            for (PatternSpec part : u.parts()) {
                layoutFiles(part, files);
            }
        } else if (pattern instanceof CausalPattern c) {
            layoutFiles(c.inner(), files);
        } else if (pattern instanceof ExplicitPattern e && e.file().isPresent()) {
            files.input("the layout file of --pattern", e.file().get());
        }
    }

    /** @return the {@code .npy} shape of a packed tensor in its layout: [B, H, N, D] or [B, N, H, D] */
    static int[] fileShape(Tensor t, TensorLayout layout) {
        return layout == TensorLayout.BSHD ? new int[] {t.batch(), t.length(), t.heads(), t.dim()}
                : new int[] {t.batch(), t.heads(), t.length(), t.dim()};
    }

    /**
     * Reads one input in {@code layout} and adds to {@code readAs} one line saying how it was read.
     *
     * @return a packed tensor of the file's element type (float64 rounded to float32)
     */
    static Tensor read(String name, Path file, TensorLayout layout, List<String> readAs) throws IOException {
        NpyArray a = NpyArray.read(file);
        int[] s = a.shape();
        boolean bshd = layout == TensorLayout.BSHD;
        String dims = bshd ? "[B, N, H, D]" : "[B, H, N, D]";
        if (s.length != 4) {
            throw new IllegalArgumentException(name + " (" + file + ") has shape " + Arrays.toString(s)
                    + " but must be rank 4 " + dims + " (--layout " + layout.name().toLowerCase(java.util.Locale.ROOT) + ")");
        }
        ElementType type = a.elementType();
        if (type == null && !a.isFloat64()) {
            throw new IllegalArgumentException(name + " (" + file + ") has dtype " + a.dtype()
                    + " but must be float32 '<f4', float16 '<f2', bfloat16 bits '<u2' or float64 '<f8'");
        }
        int batch = s[0];
        int heads = bshd ? s[2] : s[1];
        int length = bshd ? s[1] : s[2];
        int dim = s[3];
        String typeText = a.isFloat64() ? "float64 rounded to float32" : switch (type) {
            case FP32 -> "float32";
            case FP16 -> "float16";
            case BF16 -> "bfloat16 (uint16 bits)";
        };
        String hint = !bshd && heads > length ? "; if the file is [B, N, H, D], pass --layout bshd" : "";
        readAs.add("starling: " + name + ": " + file + " " + Arrays.toString(s) + " read as "
                + layout.name().toLowerCase(java.util.Locale.ROOT) + " " + dims + ": B=" + batch + ", H=" + heads
                + ", N=" + length + ", D=" + dim + ", " + typeText + hint);
        if (type != null && type.isHalf()) {
            return Tensor.of(layout, type, a.toShorts(), batch, heads, length, dim);
        }
        float[] values;
        try {
            values = a.toFloats();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(name + " (" + file + "): " + e.getMessage(), e);
        }
        return Tensor.of(layout, values, batch, heads, length, dim);
    }

    /** {@code bhsd} or {@code bshd}, any case. */
    static final class LayoutConverter implements CommandLine.ITypeConverter<TensorLayout> {
        @Override
        public TensorLayout convert(String value) {
            return switch (value.strip().toLowerCase(java.util.Locale.ROOT)) {
                case "bhsd" -> TensorLayout.BHSD;
                case "bshd" -> TensorLayout.BSHD;
                default -> throw new CommandLine.TypeConversionException("--layout must be bhsd or bshd, got '" + value + "'");
            };
        }
    }
}
