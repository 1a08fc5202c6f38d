package dev.starling.backend.cuda;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.BasePlan;
import dev.starling.api.plan.WorkPlan;
import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUfunction;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

/**
 * A CUDA plan: the {@link WorkPlan}'s packed units, key blocks and split rows, the key/query
 * lengths and, when rows are split ({@link SplitRows}), the split-row workspace are uploaded or
 * allocated once at creation; host-transfer buffers once on the first host {@code forward};
 * everything is freed when the plan is closed (after running calls finished, see {@link BasePlan}).
 *
 * <p>Two entry points: {@link #forward(Tensor, Tensor, Tensor, Tensor, float[])} copies host
 * arrays in and out; {@link #forward(CUdeviceptr, CUdeviceptr, CUdeviceptr, CUdeviceptr, CUdeviceptr, TensorLayout, CUstream)}
 * takes device pointers for callers that keep tensors on the GPU. Calls are serialised on the
 * plan (they share its device buffers), so {@code forward} is safe from several threads; on the
 * GPU, launches that use the split-row workspace wait for the previous call's merge, whatever
 * stream each call uses.
 */
public final class CudaPlan extends BasePlan {
    private final CudaDevice device;
    private final WorkPlan work;
    private final LaunchGeometry geometry;
    private final CUfunction attention;
    private final CUfunction merge;
    /** Serialises calls: they share the host-transfer buffers and the workspace. */
    private final Object deviceLock = new Object();
    private CUdeviceptr units;
    private CUdeviceptr keyBlocks;
    private CUdeviceptr splits;
    private CUdeviceptr keyLens;
    private CUdeviceptr queryLens;
    private CUdeviceptr wsO;
    private CUdeviceptr wsLse;
    private CUevent workspaceFree;
    private final KernelParams.PlanBuffers planBuffers;
    private CUdeviceptr qBuf;
    private CUdeviceptr kBuf;
    private CUdeviceptr vBuf;
    private CUdeviceptr oBuf;
    private CUdeviceptr lseBuf;

    /**
     * Plans a problem on a device: the checks of {@link BasePlan}, the work plan, the launch, the uploads.
     *
     * @param backend the backend (name and capabilities)
     * @param device the opened device
     * @param problem the problem. Not modified.
     * @param layout its layout. Not modified.
     * @param maxBlocksPerUnit key blocks per unit ({@link SplitRows}); {@link SplitRows#OFF} splits nothing
     */
    CudaPlan(CudaBackend backend, CudaDevice device, AttentionProblem problem, BlockLayout layout, int maxBlocksPerUnit) {
        super(backend, problem, layout);
        this.device = device;
        this.work = WorkPlan.of(layout, maxBlocksPerUnit);
        this.geometry = LaunchGeometry.of(problem, layout, work, device.maxSharedOptIn);
        synchronized (CudaDevice.class) {
            device.makeCurrent();
            this.attention = device.function(geometry.kernel());
            this.merge = geometry.merges() ? device.function(LaunchGeometry.MERGE_KERNEL) : null;
            try {
                units = upload(work.packUnits(), "units");
                keyBlocks = upload(work.packKeyBlocks(), "key blocks");
                splits = upload(work.packSplits(), "split rows");
                keyLens = problem.hasKeyLengths() ? upload(problem.keyLengths(), "key lengths") : null;
                queryLens = problem.hasQueryLengths() ? upload(problem.queryLengths(), "query lengths") : null;
                if (geometry.merges()) {
                    wsO = alloc(geometry.workspaceOutBytes(), "split-row workspace (outputs)");
                    wsLse = alloc(geometry.workspaceLseBytes(), "split-row workspace (LSE)");
                    workspaceFree = new CUevent();
                    CudaException.check(JCudaDriver.cuEventCreate(workspaceFree, CUevent_flags.CU_EVENT_DISABLE_TIMING),
                            "cuEventCreate");
                }
            } catch (RuntimeException e) {
                free();
                throw e;
            }
        }
        planBuffers = new KernelParams.PlanBuffers(DeviceTensor.address(units), DeviceTensor.address(keyBlocks),
                DeviceTensor.address(splits), DeviceTensor.address(keyLens), DeviceTensor.address(queryLens),
                DeviceTensor.address(wsO), DeviceTensor.address(wsLse));
    }

    private static CUdeviceptr alloc(long bytes, String what) {
        CUdeviceptr p = new CUdeviceptr();
        CudaException.check(JCudaDriver.cuMemAlloc(p, Math.max(bytes, 4)), "cuMemAlloc(" + bytes + " bytes for " + what + ")");
        return p;
    }

    private static CUdeviceptr upload(int[] data, String what) {
        CUdeviceptr p = alloc((long) data.length * Sizeof.INT, what);
        CudaException.check(JCudaDriver.cuMemcpyHtoD(p, Pointer.to(data), (long) data.length * Sizeof.INT),
                "cuMemcpyHtoD(" + what + ")");
        return p;
    }

    /** @return the launches this plan uses */
    public LaunchGeometry geometry() {
        return geometry;
    }

    /** @return the units and split rows this plan runs */
    public WorkPlan work() {
        return work;
    }

    @Override
    protected void compute(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse) {
        synchronized (deviceLock) {
            device.makeCurrent();
            if (qBuf == null) {
                qBuf = alloc(4L * q.data().length, "q");
                kBuf = alloc(4L * k.data().length, "k");
                vBuf = alloc(4L * v.data().length, "v");
                oBuf = alloc(4L * out.data().length, "out");
                lseBuf = alloc(4L * problem().lseSize(), "lse");
            }
            copyIn(qBuf, q.data(), "q");
            copyIn(kBuf, k.data(), "k");
            copyIn(vBuf, v.data(), "v");
            // Each tensor brings its own strides, so the four may use different layouts.
            launch(onDevice(qBuf, q), onDevice(kBuf, k), onDevice(vBuf, v), onDevice(oBuf, out),
                    lse != null ? DeviceTensor.address(lseBuf) : 0L, null);
            CudaException.check(JCudaDriver.cuCtxSynchronize(), "cuCtxSynchronize (after the attention kernel)");
            CudaException.check(JCudaDriver.cuMemcpyDtoH(Pointer.to(out.data()), oBuf, 4L * out.data().length),
                    "cuMemcpyDtoH(out)");
            if (lse != null) {
                CudaException.check(JCudaDriver.cuMemcpyDtoH(Pointer.to(lse), lseBuf, 4L * lse.length), "cuMemcpyDtoH(lse)");
            }
        }
    }

    private static DeviceTensor onDevice(CUdeviceptr buffer, Tensor t) {
        return DeviceTensor.of(DeviceTensor.address(buffer), t.layout(), t.heads(), t.length(), t.dim());
    }

    private static void copyIn(CUdeviceptr dst, float[] src, String what) {
        CudaException.check(JCudaDriver.cuMemcpyHtoD(dst, Pointer.to(src), 4L * src.length), "cuMemcpyHtoD(" + what + ")");
    }

    /**
     * Attention on tensors already on this plan's device, all in one layout. The kernels are
     * launched on {@code stream} and this call returns without waiting; synchronise the stream
     * before reading {@code out}. Inputs are not modified; every element of {@code out} (and of
     * {@code lse}) is written.
     *
     * @param q queries {@code [B, Hq, Nq, D]} float32 in {@code layout}. Not modified.
     * @param k keys {@code [B, Hkv, Nk, D]}. Not modified.
     * @param v values {@code [B, Hkv, Nk, Dv]}. Not modified.
     * @param out output {@code [B, Hq, Nq, Dv]}. Modified.
     * @param lse {@code [B, Hq, Nq]} float32, or {@code null}. Modified.
     * @param layout the memory order of q, k, v and out
     * @param stream the stream, or {@code null} for the default stream
     * @throws IllegalStateException if the plan is closed
     * @throws IllegalArgumentException naming the argument that is null, or an output whose range overlaps an
     *         input or the other output; the caller guarantees the buffers' sizes
     */
    public void forward(CUdeviceptr q, CUdeviceptr k, CUdeviceptr v, CUdeviceptr out, CUdeviceptr lse,
                        TensorLayout layout, CUstream stream) {
        whileOpen(() -> {
            requireNonNull("q", q);
            requireNonNull("k", k);
            requireNonNull("v", v);
            requireNonNull("out", out);
            requireNonNull("layout", layout);
            AttentionProblem p = problem();
            long lseAddress = DeviceTensor.address(lse);
            checkNoOverlap(p, DeviceTensor.address(q), DeviceTensor.address(k), DeviceTensor.address(v),
                    DeviceTensor.address(out), lse == null ? -1 : lseAddress);
            synchronized (deviceLock) {
                device.makeCurrent();
                launch(DeviceTensor.of(DeviceTensor.address(q), layout, p.queryHeads(), p.queryLength(), p.headDim()),
                        DeviceTensor.of(DeviceTensor.address(k), layout, p.kvHeads(), p.keyLength(), p.headDim()),
                        DeviceTensor.of(DeviceTensor.address(v), layout, p.kvHeads(), p.keyLength(), p.valueDim()),
                        DeviceTensor.of(DeviceTensor.address(out), layout, p.queryHeads(), p.queryLength(), p.valueDim()),
                        lseAddress, stream);
            }
            return null;
        });
    }

    private static void requireNonNull(String name, Object value) {
        if (value == null) {
            throw new IllegalArgumentException(name + " must not be null");
        }
    }

    /**
     * Refuses device outputs whose byte range overlaps an input or the other output.
     *
     * @param p the problem (tensor sizes)
     * @param q address of q
     * @param k address of k
     * @param v address of v
     * @param out address of out
     * @param lse address of lse, or −1 when there is none
     * @throws IllegalArgumentException naming the two tensors that overlap
     */
    static void checkNoOverlap(AttentionProblem p, long q, long k, long v, long out, long lse) {
        long b = p.batch();
        long qBytes = 4L * b * p.queryHeads() * p.queryLength() * p.headDim();
        long kBytes = 4L * b * p.kvHeads() * p.keyLength() * p.headDim();
        long vBytes = 4L * b * p.kvHeads() * p.keyLength() * p.valueDim();
        long oBytes = 4L * b * p.queryHeads() * p.queryLength() * p.valueDim();
        long lseBytes = 4L * p.lseSize();
        overlap("out", out, oBytes, "q", q, qBytes);
        overlap("out", out, oBytes, "k", k, kBytes);
        overlap("out", out, oBytes, "v", v, vBytes);
        if (lse >= 0) {
            overlap("lse", lse, lseBytes, "q", q, qBytes);
            overlap("lse", lse, lseBytes, "k", k, kBytes);
            overlap("lse", lse, lseBytes, "v", v, vBytes);
            overlap("lse", lse, lseBytes, "out", out, oBytes);
        }
    }

    private static void overlap(String a, long aAt, long aBytes, String b, long bAt, long bBytes) {
        if (aBytes > 0 && bBytes > 0 && aAt < bAt + bBytes && bAt < aAt + aBytes) {
            throw new IllegalArgumentException(a + " [0x" + Long.toHexString(aAt) + ", +" + aBytes + " bytes) overlaps "
                    + b + " [0x" + Long.toHexString(bAt) + ", +" + bBytes + " bytes)");
        }
    }

    /** Launches the attention kernel and, when rows are split, the merge kernel after it. Holds deviceLock. */
    private void launch(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, long lse, CUstream stream) {
        byte[] params = KernelParams.of(problem(), mask().causal(), layout(), work, geometry, planBuffers, q, k, v, out, lse)
                .bytes();
        Pointer args = Pointer.to(Pointer.to(params));
        if (workspaceFree != null) {
            // The previous call's merge (on whatever stream) has read the workspace this call overwrites.
            CudaException.check(JCudaDriver.cuStreamWaitEvent(stream, workspaceFree, 0), "cuStreamWaitEvent");
        }
        int shared = geometry.sharedBytes();
        CudaException.check(JCudaDriver.cuLaunchKernel(attention, geometry.gridX(), geometry.gridY(), 1,
                geometry.threads(), 1, 1, shared, stream, args, null),
                "cuLaunchKernel(" + geometry.kernel() + ", grid " + geometry.gridX() + "x" + geometry.gridY()
                        + ", " + shared + " bytes shared)");
        if (merge != null) {
            CudaException.check(JCudaDriver.cuLaunchKernel(merge, geometry.mergeGridX(), geometry.gridY(), 1,
                    LaunchGeometry.MERGE_THREADS, 1, 1, 0, stream, args, null),
                    "cuLaunchKernel(" + LaunchGeometry.MERGE_KERNEL + ", grid " + geometry.mergeGridX() + "x"
                            + geometry.gridY() + ")");
            CudaException.check(JCudaDriver.cuEventRecord(workspaceFree, stream), "cuEventRecord");
        }
    }

    @Override
    protected void release() {
        synchronized (deviceLock) {
            try {
                device.makeCurrent();
                // Device-pointer calls return before their kernels finish; free nothing under them.
                JCudaDriver.cuCtxSynchronize();
            } finally {
                free();
            }
        }
    }

    private void free() {
        for (CUdeviceptr p : new CUdeviceptr[] {units, keyBlocks, splits, keyLens, queryLens, wsO, wsLse, qBuf, kBuf, vBuf,
            oBuf, lseBuf}) {
            if (p != null) {
                JCudaDriver.cuMemFree(p);
            }
        }
        if (workspaceFree != null) {
            JCudaDriver.cuEventDestroy(workspaceFree);
        }
        units = keyBlocks = splits = keyLens = queryLens = wsO = wsLse = qBuf = kBuf = vBuf = oBuf = lseBuf = null;
        workspaceFree = null;
    }
}
