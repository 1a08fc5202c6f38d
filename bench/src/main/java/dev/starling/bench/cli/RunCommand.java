package dev.starling.bench.cli;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
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
import dev.starling.bench.output.StagedFiles;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code starling run}: attention on NumPy files. Inputs are float32 (float64 is converted with a
 * warning) C-order arrays {@code q [B, Hq, Nq, D]}, {@code k [B, Hkv, Nk, D]}, {@code v [B, Hkv, Nk, Dv]};
 * the output is float32 {@code [B, Hq, Nq, Dv]} and the optional LSE {@code [B, Hq, Nq]}.
 */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Run block-sparse attention on .npy files (float32, [B, H, N, D]).")
final class RunCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--q", required = true, paramLabel = "FILE", description = "queries [B, Hq, Nq, D]")
    Path qFile;
    @Option(names = "--k", required = true, paramLabel = "FILE", description = "keys [B, Hkv, Nk, D]")
    Path kFile;
    @Option(names = "--v", required = true, paramLabel = "FILE", description = "values [B, Hkv, Nk, Dv]")
    Path vFile;
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
    @Option(names = "--out", required = true, paramLabel = "FILE", description = "output [B, Hq, Nq, Dv], float32")
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

        Tensor q = read("q", qFile, err);
        Tensor k = read("k", kFile, err);
        Tensor v = read("v", vFile, err);
        AttentionProblem.Builder b = AttentionProblem.builder()
                .batch(q.batch()).heads(q.heads()).kvHeads(k.heads())
                .queryLength(q.length()).keyLength(k.length())
                .headDim(q.dim()).valueDim(v.dim()).causal(causal)
                .keyLengths(keyLengths).queryLengths(queryLengths);
        if (scale != null) {
            b.scale(scale);
        }
        AttentionProblem problem = b.build();
        Tensor out = Tensor.zeros(TensorLayout.BHSD, problem.batch(), problem.queryHeads(), problem.queryLength(),
                problem.valueDim());
        problem.checkInputs(q, k, v, out, null);
        Tensor dOut = backward ? read("dout", doutFile, err) : null;
        Tensor dq = backward ? Tensor.zeros(TensorLayout.BHSD, q.batch(), q.heads(), q.length(), q.dim()) : null;
        Tensor dk = backward ? Tensor.zeros(TensorLayout.BHSD, k.batch(), k.heads(), k.length(), k.dim()) : null;
        Tensor dv = backward ? Tensor.zeros(TensorLayout.BHSD, v.batch(), v.heads(), v.length(), v.dim()) : null;
        float[] lse = lseFile != null || backward ? new float[problem.lseSize()] : null;
        if (backward) {
            problem.checkGradients(q, k, v, out, lse, dOut, dq, dk, dv);
        }
        BlockLayout layout = Starling.layout(problem, pattern);
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
        long t0 = System.nanoTime();
        try (AttentionPlan plan = chosen.plan(problem, layout)) {
            plan.forward(q, k, v, out, lse);
            if (backward) {
                plan.backward(q, k, v, out, lse, dOut, dq, dk, dv);
            }
        }
        double millis = (System.nanoTime() - t0) / 1e6;
        // Both files are written in full beside their targets first; only then are they renamed into place.
        try (StagedFiles staged = new StagedFiles()) {
            NpyArray outArray = NpyArray.ofFloats(out.data(), problem.batch(), problem.queryHeads(), problem.queryLength(),
                    problem.valueDim());
            staged.stage(outTarget, outArray::write);
            if (lseTarget != null) {
                NpyArray lseArray = NpyArray.ofFloats(lse, problem.batch(), problem.queryHeads(), problem.queryLength());
                staged.stage(lseTarget, lseArray::write);
            }
            if (backward) {
                List<Tensor> gradients = List.of(dq, dk, dv);
                for (int g = 0; g < gradients.size(); g++) {
                    Tensor t = gradients.get(g);
                    NpyArray a = NpyArray.ofFloats(t.data(), t.batch(), t.heads(), t.length(), t.dim());
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

    private static Tensor read(String name, Path file, PrintWriter err) throws IOException {
        NpyArray a = NpyArray.read(file);
        int[] s = a.shape();
        if (s.length != 4) {
            throw new IllegalArgumentException(name + " (" + file + ") has shape " + Arrays.toString(s)
                    + " but must be rank 4 [B, H, N, D]");
        }
        if (!a.dtype().equals("<f4") && !a.isFloat64()) {
            throw new IllegalArgumentException(name + " (" + file + ") has dtype " + a.dtype() + " but must be float32");
        }
        if (a.isFloat64()) {
            err.println("starling: warning: " + name + " (" + file + ") is float64; converting to float32");
            err.flush();
        }
        return Tensor.bhsd(a.toFloats(), s[0], s[1], s[2], s[3]);
    }
}
