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
import dev.starling.bench.output.StagedFiles;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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

    @Override
    public Integer call() throws IOException {
        PrintWriter err = spec.commandLine().getErr();
        // Every file check comes first, so nothing is read, computed or written for a run that cannot finish.
        PatternSpec pattern = Patterns.parse(patternText);
        List<Map.Entry<String, Path>> inputs = new ArrayList<>(List.of(Map.entry("--q", qFile), Map.entry("--k", kFile),
                Map.entry("--v", vFile)));
        layoutFiles(pattern, inputs);
        for (Map.Entry<String, Path> input : inputs) {
            FileChecks.requireReadable(input.getValue());
        }
        List<Map.Entry<String, Path>> outputs = new ArrayList<>(List.of(Map.entry("--out", outFile)));
        if (lseFile != null) {
            outputs.add(Map.entry("--lse", lseFile));
        }
        for (Map.Entry<String, Path> o : outputs) {
            FileChecks.requireWritable(o.getValue());
            for (Map.Entry<String, Path> i : inputs) {
                if (FileChecks.sameFile(o.getValue(), i.getValue())) {
                    throw new IllegalArgumentException(o.getKey() + " " + o.getValue() + " is the same file as " + i.getKey()
                            + " " + i.getValue() + "; run never writes over an input");
                }
            }
        }
        if (lseFile != null && FileChecks.sameFile(outFile, lseFile)) {
            throw new IllegalArgumentException("--out " + outFile + " and --lse " + lseFile
                    + " are the same file; give them different names");
        }

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
        BlockLayout layout = Starling.layout(problem, pattern);
        BackendSelector selector = BackendSelector.discover();
        SparseAttention chosen = backend != null ? selector.byName(backend.toLowerCase()) : selector.select(problem, lseFile != null);
        float[] lse = lseFile != null ? new float[problem.lseSize()] : null;
        long t0 = System.nanoTime();
        try (AttentionPlan plan = chosen.plan(problem, layout)) {
            plan.forward(q, k, v, out, lse);
        }
        double millis = (System.nanoTime() - t0) / 1e6;
        // Both files are written in full beside their targets first; only then are they renamed into place.
        try (StagedFiles files = new StagedFiles()) {
            NpyArray outArray = NpyArray.ofFloats(out.data(), problem.batch(), problem.queryHeads(), problem.queryLength(),
                    problem.valueDim());
            files.stage(outFile, outArray::write);
            if (lse != null) {
                NpyArray lseArray = NpyArray.ofFloats(lse, problem.batch(), problem.queryHeads(), problem.queryLength());
                files.stage(lseFile, lseArray::write);
            }
            files.commit();
        }
        PrintWriter out2 = spec.commandLine().getOut();
        out2.printf("%s on %s: %s, %.1f ms; wrote %s%s%n", pattern.text(), chosen.name(), problem, millis, outFile,
                lseFile != null ? " and " + lseFile : "");
        out2.flush();
        return 0;
    }

    /**
     * Adds the files that {@code layout(file=...)} parts of the pattern were read from, so an
     * output cannot replace them either.
     */
    static void layoutFiles(PatternSpec pattern, List<Map.Entry<String, Path>> inputs) {
        if (pattern instanceof UnionPattern u) {
            u.parts().forEach(part -> layoutFiles(part, inputs));
        } else if (pattern instanceof CausalPattern c) {
            layoutFiles(c.inner(), inputs);
        } else if (pattern instanceof ExplicitPattern e) {
            e.file().ifPresent(file -> inputs.add(Map.entry("the layout file of --pattern", file)));
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
