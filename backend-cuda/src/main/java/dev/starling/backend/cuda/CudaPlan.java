package dev.starling.backend.cuda;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Capabilities;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.BasePlan;
import dev.starling.api.plan.LayoutColumns;
import dev.starling.api.plan.WorkPlan;
import java.util.ArrayList;
import java.util.List;
import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

/**
 * A CUDA plan: the {@link WorkPlan}'s packed units, key blocks and split rows, the key/query
 * lengths and, when rows are split ({@link SplitRows}), the split-row workspace are uploaded or
 * allocated once at creation; host-transfer buffers once on the first host {@code forward}; the
 * 16-bit copies an {@code mma.sync} kernel reads once on the first call that converts;
 * everything is freed when the plan is closed (after running calls finished, see {@link BasePlan}).
 *
 * <p>Kernels: {@link KernelFamily} chooses ({@code -Dstarling.cuda.kernels}); {@link #geometry()}
 * says which run. Three entry points: {@link #forward(Tensor, Tensor, Tensor, Tensor, float[])}
 * copies host arrays in and out;
 * {@link #forward(CUdeviceptr, CUdeviceptr, CUdeviceptr, CUdeviceptr, CUdeviceptr, TensorLayout, CUstream)}
 * takes float32 device pointers for callers that keep tensors on the GPU;
 * {@link #forward16(CUdeviceptr, CUdeviceptr, CUdeviceptr, CUdeviceptr, CUdeviceptr, TensorLayout, CUstream)}
 * takes bf16 or fp16 device tensors in the plan's precision and runs no conversion. Calls are
 * serialised on the plan (they share its device buffers), so {@code forward} is safe from several
 * threads; on the GPU, launches that use the split-row workspace or the 16-bit copies wait for
 * the previous call's kernels that use them, whatever stream each call uses.
 *
 * <p>Backward ({@code -Dstarling.cuda.backward=true}, see {@link CudaBackend#BACKWARD_PROPERTY}):
 * {@link #computeBackward} copies the inputs, the forward's output and LSE and {@code dO} in,
 * launches {@code starling_bwd_delta}, {@code starling_bwd_dq} and {@code starling_bwd_dkdv}
 * ({@link BackwardGeometry}) and copies {@code dQ}, {@code dK}, {@code dV} out. Its whole-row
 * units, packed columns, {@code D} workspace and gradient buffers are made on the first backward
 * call. Not yet run on a GPU.
 */
public final class CudaPlan extends BasePlan {
    private final CudaDevice device;
    private final WorkPlan work;
    private final LaunchGeometry geometry;
    /** The WMMA launches of the same problem when {@link #geometry} is an mma kernel (misaligned inputs), else null. */
    private final LaunchGeometry fallback;
    /** Serialises calls: they share the host-transfer buffers, the 16-bit copies and the workspace. */
    private final Object deviceLock = new Object();
    private CUdeviceptr units;
    private CUdeviceptr keyBlocks;
    private CUdeviceptr splits;
    private CUdeviceptr keyLens;
    private CUdeviceptr queryLens;
    private CUdeviceptr wsO;
    private CUdeviceptr wsLse;
    /** Recorded after the last kernel of a call that used the workspace or the 16-bit copies. */
    private CUevent buffersFree;
    private final KernelParams.PlanBuffers planBuffers;
    private CUdeviceptr qBuf;
    private CUdeviceptr kBuf;
    private CUdeviceptr vBuf;
    private CUdeviceptr oBuf;
    private CUdeviceptr lseBuf;
    private CUdeviceptr q16Buf;
    private CUdeviceptr k16Buf;
    private CUdeviceptr v16Buf;
    /** The backward pass's device state, made on the first {@code backward} call (holding deviceLock). */
    private Backward backward;
    /** GPU time of the last backward call's three kernels, ms (CUDA events); NaN before the first. */
    private volatile float lastBackwardKernelMillis = Float.NaN;

    /**
     * Plans a problem on a device: the checks of {@link BasePlan}, the work plan, the launch, the uploads.
     *
     * @param backend the backend (name and capabilities)
     * @param device the opened device
     * @param problem the problem. Not modified.
     * @param layout its layout. Not modified.
     * @param planCapabilities what this plan computes (its options decide FP16 and backward)
     * @param maxBlocksPerUnit key blocks per unit ({@link SplitRows}); {@link SplitRows#OFF} splits nothing
     * @param family the kernels to run ({@link KernelFamily})
     * @param forcedStages stages of an mma kernel ({@link MmaSpecialisation#STAGES_PROPERTY}), 0 to choose
     */
    CudaPlan(CudaBackend backend, Capabilities planCapabilities, CudaDevice device, AttentionProblem problem,
             BlockLayout layout, int maxBlocksPerUnit, KernelFamily family, int forcedStages) {
        super(backend, planCapabilities, problem, layout);
        this.device = device;
        this.work = WorkPlan.of(layout, maxBlocksPerUnit);
        this.geometry = LaunchGeometry.of(problem, layout, work, device.limits(), family, forcedStages);
        this.fallback = geometry.mma() == null ? null
                : LaunchGeometry.of(problem, layout, work, device.limits(), KernelFamily.WMMA, 0);
        synchronized (CudaDevice.class) {
            device.makeCurrent();
            // Resolve the symbols this plan runs now, so a missing kernel fails here, not in forward.
            device.function(geometry.kernel());
            if (geometry.converts()) {
                device.function(geometry.convertKernel());
            }
            if (geometry.merges()) {
                device.function(LaunchGeometry.MERGE_KERNEL);
            }
            try {
                units = upload(work.packUnits(), "units");
                keyBlocks = upload(work.packKeyBlocks(), "key blocks");
                splits = upload(work.packSplits(), "split rows");
                keyLens = problem.hasKeyLengths() ? upload(problem.keyLengths(), "key lengths") : null;
                queryLens = problem.hasQueryLengths() ? upload(problem.queryLengths(), "query lengths") : null;
                if (geometry.merges()) {
                    wsO = alloc(geometry.workspaceOutBytes(), "split-row workspace (outputs)");
                    wsLse = alloc(geometry.workspaceLseBytes(), "split-row workspace (LSE)");
                }
                if (geometry.merges() || geometry.converts()) {
                    buffersFree = new CUevent();
                    CudaException.check(JCudaDriver.cuEventCreate(buffersFree, CUevent_flags.CU_EVENT_DISABLE_TIMING),
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

    /** @return the launches this plan uses for aligned inputs (see {@link LaunchGeometry#select}) */
    public LaunchGeometry geometry() {
        return geometry;
    }

    /** @return the WMMA launches used for inputs an mma kernel cannot read (misaligned), or {@code null} */
    public LaunchGeometry fallbackGeometry() {
        return fallback;
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
                    lse != null ? DeviceTensor.address(lseBuf) : 0L, LaunchGeometry.Inputs.FLOAT32, null);
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
     * Attention on float32 tensors already on this plan's device, all in one layout. The kernels
     * are launched on {@code stream} and this call returns without waiting; synchronise the stream
     * before reading {@code out}. Inputs are not modified; every element of {@code out} (and of
     * {@code lse}) is written. A BF16 or FP16 plan whose kernel is an {@code mma.sync} one first
     * converts the inputs into 16-bit copies it owns ({@link LaunchGeometry#convertKernel()}); use
     * {@link #forward16} to skip that.
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
        forwardOnDevice(q, k, v, out, lse, layout, stream, LaunchGeometry.Inputs.FLOAT32);
    }

    /**
     * Attention on 16-bit tensors already on this plan's device, in the plan's precision ({@code q},
     * {@code k}, {@code v} bf16 for a BF16 plan, fp16 for an FP16 plan), all in one layout, with no
     * conversion pass: the kernel reads them directly. The output and LSE are float32, as in
     * {@link #forward(CUdeviceptr, CUdeviceptr, CUdeviceptr, CUdeviceptr, CUdeviceptr, TensorLayout, CUstream)},
     * whose other rules apply. With the {@link KernelFamily#MMA} kernels, inputs whose addresses
     * are not multiples of {@link LaunchGeometry#MMA_INPUT_ALIGN} bytes run the WMMA kernels.
     *
     * @param q queries {@code [B, Hq, Nq, D]}, 2 bytes an element, in {@code layout}. Not modified.
     * @param k keys {@code [B, Hkv, Nk, D]}. Not modified.
     * @param v values {@code [B, Hkv, Nk, Dv]}. Not modified.
     * @param out output {@code [B, Hq, Nq, Dv]} float32. Modified.
     * @param lse {@code [B, Hq, Nq]} float32, or {@code null}. Modified.
     * @param layout the memory order of q, k, v and out
     * @param stream the stream, or {@code null} for the default stream
     * @throws IllegalStateException if the plan is closed
     * @throws UnsupportedOperationException if the plan's precision is not BF16 or FP16
     * @throws IllegalArgumentException naming the argument that is null, or an output whose range overlaps an
     *         input or the other output; the caller guarantees the buffers' sizes
     */
    public void forward16(CUdeviceptr q, CUdeviceptr k, CUdeviceptr v, CUdeviceptr out, CUdeviceptr lse,
                          TensorLayout layout, CUstream stream) {
        forwardOnDevice(q, k, v, out, lse, layout, stream, LaunchGeometry.Inputs.SIXTEEN_BIT);
    }

    private void forwardOnDevice(CUdeviceptr q, CUdeviceptr k, CUdeviceptr v, CUdeviceptr out, CUdeviceptr lse,
                                 TensorLayout layout, CUstream stream, LaunchGeometry.Inputs inputs) {
        whileOpen(() -> {
            requireNonNull("q", q);
            requireNonNull("k", k);
            requireNonNull("v", v);
            requireNonNull("out", out);
            requireNonNull("layout", layout);
            AttentionProblem p = problem();
            if (inputs == LaunchGeometry.Inputs.SIXTEEN_BIT && geometry.kernel16() == null) {
                throw new UnsupportedOperationException("forward16 takes bf16 or fp16 inputs; this plan's precision is "
                        + p.precision());
            }
            int inputBytes = inputs == LaunchGeometry.Inputs.SIXTEEN_BIT ? 2 : Float.BYTES;
            long lseAddress = DeviceTensor.address(lse);
            checkNoOverlap(p, inputBytes, DeviceTensor.address(q), DeviceTensor.address(k), DeviceTensor.address(v),
                    DeviceTensor.address(out), lse == null ? -1 : lseAddress);
            synchronized (deviceLock) {
                device.makeCurrent();
                launch(DeviceTensor.of(DeviceTensor.address(q), layout, p.queryHeads(), p.queryLength(), p.headDim()),
                        DeviceTensor.of(DeviceTensor.address(k), layout, p.kvHeads(), p.keyLength(), p.headDim()),
                        DeviceTensor.of(DeviceTensor.address(v), layout, p.kvHeads(), p.keyLength(), p.valueDim()),
                        DeviceTensor.of(DeviceTensor.address(out), layout, p.queryHeads(), p.queryLength(), p.valueDim()),
                        lseAddress, inputs, stream);
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
     * @param inputBytes bytes of one element of q, k and v (4 for float32, 2 for bf16/fp16); out and lse are float32
     * @param q address of q
     * @param k address of k
     * @param v address of v
     * @param out address of out
     * @param lse address of lse, or −1 when there is none
     * @throws IllegalArgumentException naming the two tensors that overlap
     */
    static void checkNoOverlap(AttentionProblem p, int inputBytes, long q, long k, long v, long out, long lse) {
        long b = p.batch();
        long qBytes = inputBytes * b * p.queryHeads() * p.queryLength() * p.headDim();
        long kBytes = inputBytes * b * p.kvHeads() * p.keyLength() * p.headDim();
        long vBytes = inputBytes * b * p.kvHeads() * p.keyLength() * p.valueDim();
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

    // Launches the conversion (when the kernel reads 16-bit copies of float32 inputs), the attention
    // kernel and, when rows are split, the merge kernel. q, k, v carry float32 addresses, or for
    // 16-bit inputs the caller's 16-bit addresses; their strides (in elements) hold either way. Holds deviceLock.
    private void launch(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, long lse,
                        LaunchGeometry.Inputs inputs, CUstream stream) {
        LaunchGeometry.Launch run = LaunchGeometry.select(geometry, fallback, inputs, q.address(), k.address(), v.address());
        LaunchGeometry g = run.geometry();
        KernelParams.Inputs16 inputs16;
        DeviceTensor qf = q;
        DeviceTensor kf = k;
        DeviceTensor vf = v;
        if (inputs == LaunchGeometry.Inputs.SIXTEEN_BIT) {
            inputs16 = new KernelParams.Inputs16(q.address(), k.address(), v.address());
            qf = q.at(0);
            kf = k.at(0);
            vf = v.at(0);
        } else if (run.convert()) {
            allocateCopies();
            inputs16 = new KernelParams.Inputs16(DeviceTensor.address(q16Buf), DeviceTensor.address(k16Buf),
                    DeviceTensor.address(v16Buf));
        } else {
            inputs16 = KernelParams.Inputs16.NONE;
        }
        byte[] params = KernelParams.of(problem(), mask().causal(), layout(), work, g, planBuffers, qf, kf, vf, out, lse,
                inputs16).bytes();
        Pointer args = Pointer.to(Pointer.to(params));
        boolean usesPlanBuffers = g.merges() || run.convert();
        if (buffersFree != null && usesPlanBuffers) {
            // The previous call's kernels (on whatever stream) are done with the buffers this call overwrites.
            CudaException.check(JCudaDriver.cuStreamWaitEvent(stream, buffersFree, 0), "cuStreamWaitEvent");
        }
        if (run.convert()) {
            CudaException.check(JCudaDriver.cuLaunchKernel(device.function(g.convertKernel()), g.convertGridX(), 3, 1,
                    LaunchGeometry.CONVERT_THREADS, 1, 1, 0, stream, args, null),
                    "cuLaunchKernel(" + g.convertKernel() + ", grid " + g.convertGridX() + "x3)");
        }
        int shared = g.sharedBytes();
        CudaException.check(JCudaDriver.cuLaunchKernel(device.function(run.kernel()), g.gridX(), g.gridY(), 1,
                g.threads(), 1, 1, shared, stream, args, null),
                "cuLaunchKernel(" + run.kernel() + ", grid " + g.gridX() + "x" + g.gridY() + ", " + shared + " bytes shared)");
        if (g.merges()) {
            CudaException.check(JCudaDriver.cuLaunchKernel(device.function(LaunchGeometry.MERGE_KERNEL), g.mergeGridX(),
                    g.gridY(), 1, LaunchGeometry.MERGE_THREADS, 1, 1, 0, stream, args, null),
                    "cuLaunchKernel(" + LaunchGeometry.MERGE_KERNEL + ", grid " + g.mergeGridX() + "x" + g.gridY() + ")");
        }
        if (buffersFree != null && usesPlanBuffers) {
            CudaException.check(JCudaDriver.cuEventRecord(buffersFree, stream), "cuEventRecord");
        }
    }

    /**
     * What the backward pass keeps on the device: the whole-row units and key blocks (the forward's
     * own when it splits no row), the packed columns, the {@code D} workspace and the buffers of
     * {@code dO}, {@code dQ}, {@code dK} and {@code dV}.
     */
    private static final class Backward {
        final WorkPlan work;
        final BackwardGeometry geometry;
        final KernelParams.PlanBuffers buffers;
        final CUdeviceptr[] owned;
        final CUdeviceptr colStarts;
        final CUdeviceptr colQueryBlocks;
        final CUdeviceptr delta;
        final CUdeviceptr dOut;
        final CUdeviceptr dq;
        final CUdeviceptr dk;
        final CUdeviceptr dv;
        /** Recorded before the first and after the last backward kernel of a call. */
        final CUevent start = new CUevent();
        final CUevent stop = new CUevent();

        Backward(WorkPlan work, BackwardGeometry geometry, KernelParams.PlanBuffers buffers, CUdeviceptr[] owned,
                 CUdeviceptr colStarts, CUdeviceptr colQueryBlocks, CUdeviceptr delta, CUdeviceptr dOut, CUdeviceptr dq,
                 CUdeviceptr dk, CUdeviceptr dv) {
            this.work = work;
            this.geometry = geometry;
            this.buffers = buffers;
            this.owned = owned;
            this.colStarts = colStarts;
            this.colQueryBlocks = colQueryBlocks;
            this.delta = delta;
            this.dOut = dOut;
            this.dq = dq;
            this.dk = dk;
            this.dv = dv;
        }
    }

    /** Makes the backward pass's device state on first use. Holds deviceLock. */
    private Backward backwardState() {
        if (backward != null) {
            return backward;
        }
        AttentionProblem p = problem();
        WorkPlan whole = work.splitsPerLayout() == 0 ? work : WorkPlan.of(layout(), SplitRows.OFF);
        BackwardGeometry g = BackwardGeometry.of(p, layout(), whole, device.limits().maxSharedPerBlock());
        device.function(BackwardGeometry.DELTA_KERNEL);
        device.function(BackwardGeometry.DQ_KERNEL);
        device.function(BackwardGeometry.DKDV_KERNEL);
        List<CUdeviceptr> owned = new ArrayList<>();
        try {
            CUdeviceptr wholeUnits = units;
            CUdeviceptr wholeKeyBlocks = keyBlocks;
            if (whole != work) {
                wholeUnits = upload(whole.packUnits(), "whole-row units");
                owned.add(wholeUnits);
                wholeKeyBlocks = upload(whole.packKeyBlocks(), "whole-row key blocks");
                owned.add(wholeKeyBlocks);
            }
            LayoutColumns columns = LayoutColumns.of(layout());
            CUdeviceptr starts = upload(BackwardColumns.packStarts(columns), "column starts");
            owned.add(starts);
            CUdeviceptr queryBlocks = upload(BackwardColumns.packQueryBlocks(columns), "column query blocks");
            owned.add(queryBlocks);
            long b = p.batch();
            CUdeviceptr delta = alloc(4L * p.lseSize(), "backward D workspace");
            owned.add(delta);
            CUdeviceptr dOut = alloc(4L * b * p.queryHeads() * p.queryLength() * p.valueDim(), "dOut");
            owned.add(dOut);
            CUdeviceptr dq = alloc(4L * b * p.queryHeads() * p.queryLength() * p.headDim(), "dq");
            owned.add(dq);
            CUdeviceptr dk = alloc(4L * b * p.kvHeads() * p.keyLength() * p.headDim(), "dk");
            owned.add(dk);
            CUdeviceptr dv = alloc(4L * b * p.kvHeads() * p.keyLength() * p.valueDim(), "dv");
            owned.add(dv);
            KernelParams.PlanBuffers buffers = new KernelParams.PlanBuffers(DeviceTensor.address(wholeUnits),
                    DeviceTensor.address(wholeKeyBlocks), 0, DeviceTensor.address(keyLens), DeviceTensor.address(queryLens),
                    0, 0);
            Backward made = new Backward(whole, g, buffers, owned.toArray(new CUdeviceptr[0]), starts, queryBlocks, delta,
                    dOut, dq, dk, dv);
            CudaException.check(JCudaDriver.cuEventCreate(made.start, CUevent_flags.CU_EVENT_DEFAULT), "cuEventCreate");
            CudaException.check(JCudaDriver.cuEventCreate(made.stop, CUevent_flags.CU_EVENT_DEFAULT), "cuEventCreate");
            backward = made;
            return backward;
        } catch (RuntimeException e) {
            for (CUdeviceptr ptr : owned) {
                JCudaDriver.cuMemFree(ptr);
            }
            throw e;
        }
    }

    /**
     * The gradients on the GPU (DESIGN section 4), float32 whatever the plan's precision, from the
     * forward's output and LSE: copies in, three launches ({@link BackwardGeometry}), copies out.
     * Deterministic: every CTA owns what it writes and sums in a fixed order. Only called when the
     * backend declares {@code backward} ({@code -Dstarling.cuda.backward=true}).
     */
    @Override
    protected void computeBackward(Tensor q, Tensor k, Tensor v, Tensor out, float[] lse, Tensor dOut, Tensor dq,
                                   Tensor dk, Tensor dv) {
        synchronized (deviceLock) {
            device.makeCurrent();
            Backward bw = backwardState();
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
            copyIn(oBuf, out.data(), "out");
            copyIn(lseBuf, lse, "lse");
            copyIn(bw.dOut, dOut.data(), "dOut");
            BackwardGeometry g = bw.geometry;
            KernelParams.Backward grads = new KernelParams.Backward(onDevice(bw.dOut, dOut), onDevice(bw.dq, dq),
                    onDevice(bw.dk, dk), onDevice(bw.dv, dv), DeviceTensor.address(bw.delta),
                    DeviceTensor.address(bw.colStarts), DeviceTensor.address(bw.colQueryBlocks), layout().keyBlocks(),
                    g.keyTilesPerBlock(), g.rows());
            DeviceTensor qd = onDevice(qBuf, q);
            DeviceTensor kd = onDevice(kBuf, k);
            DeviceTensor vd = onDevice(vBuf, v);
            DeviceTensor od = onDevice(oBuf, out);
            long lseAddress = DeviceTensor.address(lseBuf);
            boolean causal = mask().causal();
            byte[] dqParams = KernelParams.backward(problem(), causal, layout(), bw.work, g, g.dqShared(), bw.buffers, qd,
                    kd, vd, od, lseAddress, grads).bytes();
            byte[] dkdvParams = KernelParams.backward(problem(), causal, layout(), bw.work, g, g.dkdvShared(), bw.buffers,
                    qd, kd, vd, od, lseAddress, grads).bytes();
            CudaException.check(JCudaDriver.cuEventRecord(bw.start, null), "cuEventRecord");
            launchBackward(BackwardGeometry.DELTA_KERNEL, g.deltaGridX(), g.gridY(), 0, dqParams);
            launchBackward(BackwardGeometry.DQ_KERNEL, g.dqGridX(), g.gridY(), g.dqShared().bytes(), dqParams);
            launchBackward(BackwardGeometry.DKDV_KERNEL, g.dkdvGridX(), g.dkdvGridY(), g.dkdvShared().bytes(), dkdvParams);
            CudaException.check(JCudaDriver.cuEventRecord(bw.stop, null), "cuEventRecord");
            CudaException.check(JCudaDriver.cuCtxSynchronize(), "cuCtxSynchronize (after the backward kernels)");
            float[] ms = new float[1];
            CudaException.check(JCudaDriver.cuEventElapsedTime(ms, bw.start, bw.stop), "cuEventElapsedTime");
            lastBackwardKernelMillis = ms[0];
            copyOut(dq.data(), bw.dq, "dq");
            copyOut(dk.data(), bw.dk, "dk");
            copyOut(dv.data(), bw.dv, "dv");
        }
    }

    /** @return GPU time of the last backward call's kernels in ms, without the copies; NaN before the first call */
    float lastBackwardKernelMillis() {
        return lastBackwardKernelMillis;
    }

    private void launchBackward(String kernel, int gridX, int gridY, int shared, byte[] params) {
        if (gridX == 0 || gridY == 0) {
            return;   // nothing to compute (no rows or no keys); a launch with an empty grid is an error
        }
        CudaException.check(JCudaDriver.cuLaunchKernel(device.function(kernel), gridX, gridY, 1, BackwardGeometry.THREADS,
                1, 1, shared, null, Pointer.to(Pointer.to(params)), null),
                "cuLaunchKernel(" + kernel + ", grid " + gridX + "x" + gridY + ", " + shared + " bytes shared)");
    }

    private static void copyOut(float[] dst, CUdeviceptr src, String what) {
        CudaException.check(JCudaDriver.cuMemcpyDtoH(Pointer.to(dst), src, 4L * dst.length), "cuMemcpyDtoH(" + what + ")");
    }

    /** Allocates the 16-bit copies of q, k and v on first use. Holds deviceLock. */
    private void allocateCopies() {
        if (q16Buf != null) {
            return;
        }
        AttentionProblem p = problem();
        long b = p.batch();
        q16Buf = alloc(2L * b * p.queryHeads() * p.queryLength() * p.headDim(), "16-bit copy of q");
        k16Buf = alloc(2L * b * p.kvHeads() * p.keyLength() * p.headDim(), "16-bit copy of k");
        v16Buf = alloc(2L * b * p.kvHeads() * p.keyLength() * p.valueDim(), "16-bit copy of v");
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
            oBuf, lseBuf, q16Buf, k16Buf, v16Buf}) {
            if (p != null) {
                JCudaDriver.cuMemFree(p);
            }
        }
        if (buffersFree != null) {
            JCudaDriver.cuEventDestroy(buffersFree);
        }
        if (backward != null) {
            for (CUdeviceptr p : backward.owned) {
                JCudaDriver.cuMemFree(p);
            }
            JCudaDriver.cuEventDestroy(backward.start);
            JCudaDriver.cuEventDestroy(backward.stop);
            backward = null;
        }
        units = keyBlocks = splits = keyLens = queryLens = wsO = wsLse = qBuf = kBuf = vBuf = oBuf = lseBuf = null;
        q16Buf = k16Buf = v16Buf = null;
        buffersFree = null;
    }
}
