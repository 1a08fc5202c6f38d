package dev.starling.bench.compare;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
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
 * for the backward pass. What a Java user calling PyTorch gets at its best.
 *
 * <p>The flash kernel runs its own OpenMP loop over (batch, head, query block) and calls {@code sgemm}
 * inside it; libtorch's BLAS is OpenBLAS, which would start its own threads under each of those
 * calls and oversubscribe the cores (about 12× slower measured). So OpenBLAS is held to one thread for
 * the duration of each call and restored after ({@link #oneBlasThread}).
 */
final class TorchSdpaPeer implements Contender {
    /** Where the fused kernel lives; also the machine rate's label. */
    static final String LIBRARY = "PyTorch " + "2.10.0" + " (libtorch CPU through the JavaCPP presets)";

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

    @Override
    public void prepare(AttentionProblem p, Tensor q, Tensor k, Tensor v) {
        close();
        problem = p;
        this.q = copy(q, p.queryHeads(), p.queryLength(), p.headDim());
        this.k = copy(k, p.kvHeads(), p.keyLength(), p.headDim());
        this.v = copy(v, p.kvHeads(), p.keyLength(), p.valueDim());
    }

    /** A libtorch tensor of its own holding {@code t}, {@code [B, heads, n, d]}. */
    private org.bytedeco.pytorch.Tensor copy(Tensor t, int heads, int n, int d) {
        Tensor bhsd = t.toLayout(TensorLayout.BHSD);
        long count = (long) problem.batch() * heads * n * d;
        FloatPointer data = new FloatPointer(count);
        try {
            data.put(bhsd.data(), bhsd.offset(0, 0, 0), (int) count);
            org.bytedeco.pytorch.Tensor view = torch.from_blob(data, problem.batch(), heads, n, d);
            org.bytedeco.pytorch.Tensor owned = view.clone();
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

    /** Copies a {@code [B, heads, n, d]} libtorch tensor into {@code to}, whatever its layout. */
    private static void read(org.bytedeco.pytorch.Tensor from, Tensor to) {
        org.bytedeco.pytorch.Tensor c = from.contiguous();
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
