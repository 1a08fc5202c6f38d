package dev.starling.backend.cuda;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

/**
 * A CUDA plan: the layout (and key/query lengths) uploaded once at creation, host-transfer
 * buffers allocated once on the first host {@link #forward}, everything freed by {@link #close()}.
 *
 * <p>Two entry points: {@link #forward(Tensor, Tensor, Tensor, Tensor, float[])} copies host
 * arrays in and out; {@link #forward(CUdeviceptr, CUdeviceptr, CUdeviceptr, CUdeviceptr, CUdeviceptr, TensorLayout, CUstream)}
 * takes device pointers for callers that keep tensors on the GPU. Calls are serialised on the
 * plan (they share its device buffers), so {@code forward} is safe from several threads.
 */
public final class CudaPlan implements AttentionPlan {
    private final CudaDevice device;
    private final AttentionProblem problem;
    private final BlockLayout layout;
    private final LaunchGeometry geometry;
    private final boolean causal;
    private final CUfunction function;
    private final int headLayouts;
    private CUdeviceptr rowStart;
    private CUdeviceptr cols;
    private CUdeviceptr keyLens;
    private CUdeviceptr queryLens;
    private CUdeviceptr qBuf;
    private CUdeviceptr kBuf;
    private CUdeviceptr vBuf;
    private CUdeviceptr oBuf;
    private CUdeviceptr lseBuf;
    private boolean closed;

    CudaPlan(CudaDevice device, AttentionProblem problem, BlockLayout layout, LaunchGeometry geometry) {
        this.device = device;
        this.problem = problem;
        this.layout = layout;
        this.geometry = geometry;
        this.causal = dev.starling.api.plan.TokenMask.of(problem, layout).causal();
        PackedLayout packed = PackedLayout.of(layout);
        this.headLayouts = packed.headLayouts();
        synchronized (CudaDevice.class) {
            device.makeCurrent();
            this.function = device.function(geometry.kernel(), geometry.sharedBytes());
            try {
                rowStart = upload(packed.rowStart());
                cols = upload(packed.cols().length == 0 ? new int[1] : packed.cols());
                keyLens = problem.hasKeyLengths() ? upload(problem.keyLengths()) : null;
                queryLens = problem.hasQueryLengths() ? upload(problem.queryLengths()) : null;
            } catch (RuntimeException e) {
                free();
                throw e;
            }
        }
    }

    private static CUdeviceptr alloc(long bytes, String what) {
        CUdeviceptr p = new CUdeviceptr();
        CudaException.check(JCudaDriver.cuMemAlloc(p, Math.max(bytes, 4)), "cuMemAlloc(" + bytes + " bytes for " + what + ")");
        return p;
    }

    private static CUdeviceptr upload(int[] data) {
        CUdeviceptr p = alloc((long) data.length * Sizeof.INT, "layout");
        CudaException.check(JCudaDriver.cuMemcpyHtoD(p, Pointer.to(data), (long) data.length * Sizeof.INT), "cuMemcpyHtoD");
        return p;
    }

    @Override
    public AttentionProblem problem() {
        return problem;
    }

    @Override
    public BlockLayout layout() {
        return layout;
    }

    /** @return the launch this plan uses */
    public LaunchGeometry geometry() {
        return geometry;
    }

    @Override
    public synchronized void forward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
        checkOpen();
        problem.checkInputs(q, k, v, out, lse);
        device.makeCurrent();
        if (qBuf == null) {
            qBuf = alloc(4L * q.data().length, "q");
            kBuf = alloc(4L * k.data().length, "k");
            vBuf = alloc(4L * v.data().length, "v");
            oBuf = alloc(4L * out.data().length, "out");
            lseBuf = alloc(4L * problem.lseSize(), "lse");
        }
        copyIn(qBuf, q.data());
        copyIn(kBuf, k.data());
        copyIn(vBuf, v.data());
        // Each tensor brings its own strides, so the four may use different layouts.
        launch(qBuf, strides(q.layout(), q.heads(), q.length(), q.dim()),
                kBuf, strides(k.layout(), k.heads(), k.length(), k.dim()),
                vBuf, strides(v.layout(), v.heads(), v.length(), v.dim()),
                oBuf, strides(out.layout(), out.heads(), out.length(), out.dim()), lse != null ? lseBuf : null, null);
        CudaException.check(JCudaDriver.cuCtxSynchronize(), "cuCtxSynchronize (after the attention kernel)");
        CudaException.check(JCudaDriver.cuMemcpyDtoH(Pointer.to(out.data()), oBuf, 4L * out.data().length), "cuMemcpyDtoH(out)");
        if (lse != null) {
            CudaException.check(JCudaDriver.cuMemcpyDtoH(Pointer.to(lse), lseBuf, 4L * lse.length), "cuMemcpyDtoH(lse)");
        }
    }

    private static void copyIn(CUdeviceptr dst, float[] src) {
        CudaException.check(JCudaDriver.cuMemcpyHtoD(dst, Pointer.to(src), 4L * src.length), "cuMemcpyHtoD");
    }

    /**
     * Attention on tensors already on this plan's device, all in one layout. The kernel is
     * launched on {@code stream} and this call returns without waiting; synchronise the stream
     * before reading {@code out}.
     *
     * @param q queries {@code [B, Hq, Nq, D]} float32 in {@code layout}. Not modified.
     * @param k keys {@code [B, Hkv, Nk, D]}. Not modified.
     * @param v values {@code [B, Hkv, Nk, Dv]}. Not modified.
     * @param out output {@code [B, Hq, Nq, Dv]}. Modified.
     * @param lse {@code [B, Hq, Nq]} float32, or {@code null}. Modified.
     * @param layout the memory order of q, k, v and out
     * @param stream the stream, or {@code null} for the default stream
     * @throws IllegalArgumentException on a null pointer; the caller guarantees the buffers' sizes
     */
    public synchronized void forward(CUdeviceptr q, CUdeviceptr k, CUdeviceptr v, CUdeviceptr out, CUdeviceptr lse,
                                     TensorLayout layout, CUstream stream) {
        checkOpen();
        if (q == null || k == null || v == null || out == null || layout == null) {
            throw new IllegalArgumentException("q, k, v, out and layout must not be null");
        }
        device.makeCurrent();
        launch(q, strides(layout, problem.queryHeads(), problem.queryLength(), problem.headDim()),
                k, strides(layout, problem.kvHeads(), problem.keyLength(), problem.headDim()),
                v, strides(layout, problem.kvHeads(), problem.keyLength(), problem.valueDim()),
                out, strides(layout, problem.queryHeads(), problem.queryLength(), problem.valueDim()), lse, stream);
    }

    private void launch(CUdeviceptr q, long[] qst, CUdeviceptr k, long[] kst, CUdeviceptr v, long[] vst, CUdeviceptr out,
                        long[] ost, CUdeviceptr lse, CUstream stream) {
        CUdeviceptr none = new CUdeviceptr();
        Pointer params = Pointer.to(
                Pointer.to(q), Pointer.to(k), Pointer.to(v), Pointer.to(out), Pointer.to(lse != null ? lse : none),
                Pointer.to(rowStart), Pointer.to(cols),
                Pointer.to(keyLens != null ? keyLens : none), Pointer.to(queryLens != null ? queryLens : none),
                Pointer.to(new long[] {qst[0]}), Pointer.to(new long[] {qst[1]}), Pointer.to(new long[] {qst[2]}),
                Pointer.to(new long[] {kst[0]}), Pointer.to(new long[] {kst[1]}), Pointer.to(new long[] {kst[2]}),
                Pointer.to(new long[] {vst[0]}), Pointer.to(new long[] {vst[1]}), Pointer.to(new long[] {vst[2]}),
                Pointer.to(new long[] {ost[0]}), Pointer.to(new long[] {ost[1]}), Pointer.to(new long[] {ost[2]}),
                Pointer.to(new int[] {problem.queryHeads()}), Pointer.to(new int[] {problem.groupSize()}),
                Pointer.to(new int[] {problem.queryLength()}), Pointer.to(new int[] {problem.keyLength()}),
                Pointer.to(new int[] {problem.headDim()}), Pointer.to(new int[] {problem.valueDim()}),
                Pointer.to(new int[] {layout.queryBlock()}), Pointer.to(new int[] {layout.keyBlock()}),
                Pointer.to(new int[] {layout.queryBlocks()}), Pointer.to(new int[] {geometry.tilesPerBlock()}),
                Pointer.to(new int[] {headLayouts}), Pointer.to(new int[] {causal ? 1 : 0}),
                Pointer.to(new float[] {problem.scale()}), Pointer.to(new int[] {geometry.tileK()}));
        CudaException.check(JCudaDriver.cuLaunchKernel(function, geometry.gridX(), geometry.gridY(), 1,
                geometry.threads(), 1, 1, geometry.sharedBytes(), stream, params, null),
                "cuLaunchKernel(" + geometry.kernel() + ", grid " + geometry.gridX() + "x" + geometry.gridY()
                        + ", " + geometry.sharedBytes() + " bytes shared)");
    }

    /** Element strides {@code (batch, head, row)} of a {@code [B, heads, length, dim]} tensor in {@code layout}. */
    static long[] strides(TensorLayout layout, int heads, int length, int dim) {
        long n = length;
        long h = heads;
        long d = dim;
        return layout == TensorLayout.BHSD ? new long[] {h * n * d, n * d, d} : new long[] {n * h * d, d, h * d};
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("forward called on a closed cuda plan");
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        device.makeCurrent();
        free();
    }

    private void free() {
        for (CUdeviceptr p : new CUdeviceptr[] {rowStart, cols, keyLens, queryLens, qBuf, kBuf, vBuf, oBuf, lseBuf}) {
            if (p != null) {
                JCudaDriver.cuMemFree(p);
            }
        }
        rowStart = cols = keyLens = queryLens = qBuf = kBuf = vBuf = oBuf = lseBuf = null;
    }
}
