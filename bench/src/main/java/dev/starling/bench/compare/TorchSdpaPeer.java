package dev.starling.bench.compare;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Precision;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.openblas.global.openblas_full;
import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.TensorArrayRefOptional;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/**
 * Dense attention in PyTorch: libtorch's fused {@code scaled_dot_product_attention} (CPU flash
 * kernel: blocked, online softmax, no {@code N × N} scores) on the whole {@code [B, H, N, D]}
 * problem in one call, through the JavaCPP presets ({@code org.bytedeco:pytorch}), and its autograd
 * for the backward pass. What a Java user calling PyTorch gets at its best. In {@link Precision#BF16} the
 * inputs (already rounded to bf16 by {@code compare}, so exactly) become {@code at::kBFloat16} tensors in
 * {@link #prepare}, the kernel runs on them (its products through oneDNN), and its bf16 output is widened
 * back to float32 inside the timed call, as a backend writes float32.
 *
 * <p>No mask is passed: the peer computes full attention, and without a mask libtorch takes its flash
 * kernel (a boolean or additive mask of all pairs measured no faster, 2026-12-08). Its threads are
 * libtorch's default, one per core ({@code at::get_num_threads()}).
 *
 * <p>The flash kernel runs its own OpenMP loop over (batch, head, query block) and calls {@code sgemm}
 * inside it; libtorch's BLAS is OpenBLAS, which would start its own threads under each of those
 * calls and oversubscribe the cores (about 12× slower measured). So OpenBLAS is held to one thread for
 * the duration of each call and restored after ({@link #oneBlasThread}).
 */
final class TorchSdpaPeer implements Contender {
    /** Where the fused kernel lives; also the machine rate's label. */
    static final String LIBRARY = "PyTorch " + "2.10.0" + " (libtorch CPU through the JavaCPP presets)";

    /**
     * How much slower this build is than a stock PyTorch on the same machine, per precision, with the
     * numbers' sources: the line printed beside the peer. Its float32 products are OpenBLAS {@code sgemm}
     * (this libtorch build has no MKL; threads, mask and kernel were already the fastest choice, see the
     * class comment), so the gap cannot be closed from Java.
     */
    static final List<String> VERSUS_STOCK = List.of(
            "torch-sdpa fp32 is about 1.3x slower than a stock PyTorch build: on this project's 2-core Xeon (AMX), "
                    + "1,024 tokens, B1 H8 D64, its fastest call took 11.3 ms (2026-12-08, docs/benchmarks.md) where PyTorch "
                    + "2.13's own SDPA (MKL, oneDNN) took 8.5 ms (issue 25): this libtorch's float32 products are OpenBLAS "
                    + "sgemm (no MKL in the JavaCPP build), so a \"sparse is Nx faster\" in fp32 overstates short lengths "
                    + "by about that much",
            "torch-sdpa bf16 is about 1.2x slower than a stock PyTorch build: on the same machine and shapes its fastest "
                    + "call took 4.0 ms (2026-12-08) where PyTorch 2.13's took 3.38 ms (issue 25); both multiply bf16 "
                    + "through oneDNN");

    /**
     * @param precisions the precisions the peer was timed in
     * @return the lines of {@link #VERSUS_STOCK} for them
     */
    static List<String> versusStock(Set<Precision> precisions) {
        return VERSUS_STOCK.stream().filter(l -> precisions.stream()
                .anyMatch(p -> l.startsWith("torch-sdpa " + p.name().toLowerCase(Locale.ROOT) + " "))).toList();
    }

    private static volatile String loadFailure;
    private static volatile boolean loaded;

    private AttentionProblem problem;
    private org.bytedeco.pytorch.Tensor q;
    private org.bytedeco.pytorch.Tensor k;
    private org.bytedeco.pytorch.Tensor v;
    private org.bytedeco.pytorch.Tensor dOut;
    private Tensor dOutSource;

    @Override
    public String name() {
        return "torch-sdpa";
    }

    @Override
    public boolean dense() {
        return true;
    }

    /**
     * Loads libtorch and OpenBLAS once.
     *
     * @return why they could not be loaded, or {@code null}
     */
    static String load() {
        if (!loaded) {
            synchronized (TorchSdpaPeer.class) {
                if (!loaded) {
                    try {
                        Loader.load(torch.class);
                        Loader.load(openblas_full.class);
                    } catch (Throwable e) {
                        loadFailure = "PyTorch (JavaCPP preset) could not be loaded: " + e;
                    }
                    loaded = true;
                }
            }
        }
        return loadFailure;
    }

    @Override
    public String unavailableReason() {
        return load();
    }

    @Override
    public String noBackward() {
        return null;
    }

    /** @return fp32 and bf16 */
    @Override
    public Set<Precision> precisions() {
        return EnumSet.of(Precision.FP32, Precision.BF16);
    }

    /**
     * A float32 libtorch tensor in a precision's element type.
     *
     * @param t a float32 tensor
     * @param precision {@link Precision#FP32} (returns {@code t}) or {@link Precision#BF16}
     * @return {@code t} or a new {@code at::kBFloat16} tensor, values rounded to nearest, ties to even
     */
    static org.bytedeco.pytorch.Tensor in(org.bytedeco.pytorch.Tensor t, Precision precision) {
        return switch (precision) {
            case FP32 -> t;
            case BF16 -> t.to(torch.ScalarType.BFloat16);
            default -> throw new IllegalArgumentException("torch-sdpa runs fp32 and bf16, not " + precision);
        };
    }

    @Override
    public void prepare(AttentionProblem p, Tensor q, Tensor k, Tensor v) {
        close();
        problem = p;
        this.q = copy(q, p.queryHeads(), p.queryLength(), p.headDim());
        this.k = copy(k, p.kvHeads(), p.keyLength(), p.headDim());
        this.v = copy(v, p.kvHeads(), p.keyLength(), p.valueDim());
    }

    /** A libtorch tensor of its own holding {@code t}, {@code [B, heads, n, d]}, in the problem's precision. */
    private org.bytedeco.pytorch.Tensor copy(Tensor t, int heads, int n, int d) {
        Tensor bhsd = t.toLayout(TensorLayout.BHSD);
        long count = (long) problem.batch() * heads * n * d;
        FloatPointer data = new FloatPointer(count);
        try {
            data.put(bhsd.data(), bhsd.offset(0, 0, 0), (int) count);
            org.bytedeco.pytorch.Tensor view = torch.from_blob(data, problem.batch(), heads, n, d);
            org.bytedeco.pytorch.Tensor owned = problem.precision() == Precision.FP32 ? view.clone()
                    : in(view, problem.precision());
            view.close();
            return owned;
        } finally {
            data.close();
        }
    }

    /** The fused kernel: {@code softmax(s·Q·Kᵀ)·V} over every pair. */
    private org.bytedeco.pytorch.Tensor attention(org.bytedeco.pytorch.Tensor q, org.bytedeco.pytorch.Tensor k,
                                                  org.bytedeco.pytorch.Tensor v) {
        return torch.scaled_dot_product_attention(q, k, v, new TensorOptional(), 0.0, false,
                new DoubleOptional(problem.scale()), problem.kvHeads() != problem.queryHeads());
    }

    @Override
    public void run(Tensor out) {
        int before = oneBlasThread();
        PointerScope scope = new PointerScope();   // closes every tensor made inside the try
        try (scope) {
            read(attention(q, k, v), out);
        } finally {
            openblas_full.openblas_set_num_threads(before);
        }
    }

    @Override
    public void runBackward(Tensor out, Tensor dOut, Tensor dq, Tensor dk, Tensor dv) {
        if (dOutSource != dOut) {
            if (this.dOut != null) {
                this.dOut.close();
            }
            this.dOut = copy(dOut, problem.queryHeads(), problem.queryLength(), problem.valueDim());
            dOutSource = dOut;
        }
        int before = oneBlasThread();
        PointerScope scope = new PointerScope();   // closes every tensor made inside the try
        try (scope) {
            // Fresh leaves over the same storage each call, so gradients never accumulate across calls.
            org.bytedeco.pytorch.Tensor ql = q.detach().requires_grad_(true);
            org.bytedeco.pytorch.Tensor kl = k.detach().requires_grad_(true);
            org.bytedeco.pytorch.Tensor vl = v.detach().requires_grad_(true);
            org.bytedeco.pytorch.Tensor o = attention(ql, kl, vl);
            o.backward(this.dOut, new BoolOptional(), false, new TensorArrayRefOptional());
            read(o.detach(), out);
            read(ql.grad(), dq);
            read(kl.grad(), dk);
            read(vl.grad(), dv);
        } finally {
            openblas_full.openblas_set_num_threads(before);
        }
    }

    /** Holds OpenBLAS to one thread (see the class comment). @return the count to restore */
    private static int oneBlasThread() {
        int before = openblas_full.openblas_get_num_threads();
        openblas_full.openblas_set_num_threads(1);
        return before;
    }

    /** Copies a {@code [B, heads, n, d]} libtorch tensor into {@code to}, whatever its layout, widened to float32. */
    private static void read(org.bytedeco.pytorch.Tensor from, Tensor to) {
        org.bytedeco.pytorch.Tensor c = from.to(torch.ScalarType.Float).contiguous();
        FloatPointer data = new FloatPointer(c.data_ptr());
        if (to.layout() == TensorLayout.BHSD) {
            data.get(to.data(), to.offset(0, 0, 0), to.batch() * to.heads() * to.length() * to.dim());
            return;
        }
        float[] row = new float[to.dim()];
        long at = 0;
        for (int b = 0; b < to.batch(); b++) {
            for (int h = 0; h < to.heads(); h++) {
                for (int n = 0; n < to.length(); n++, at += row.length) {
                    data.position(at).get(row);
                    System.arraycopy(row, 0, to.data(), to.offset(b, h, n), row.length);
                }
            }
        }
    }

    @Override
    public void close() {
        for (org.bytedeco.pytorch.Tensor t : new org.bytedeco.pytorch.Tensor[] {q, k, v, dOut}) {
            if (t != null) {
                t.close();
            }
        }
        q = null;
        k = null;
        v = null;
        dOut = null;
        dOutSource = null;
    }
}
