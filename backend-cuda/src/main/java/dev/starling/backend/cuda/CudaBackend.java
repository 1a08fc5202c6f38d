package dev.starling.backend.cuda;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.pattern.BlockLayout;
import java.util.EnumSet;

/**
 * Block-sparse attention on NVIDIA GPUs (compute capability 8.0 or newer) through the CUDA driver
 * API (JCuda; the only native need is {@code libcuda.so.1}). Precisions: FP32 (CUDA cores), TF32
 * and BF16 (tensor cores, fp32 accumulation), and FP16 with the {@code mma} kernels, chosen by
 * {@link AttentionProblem#precision()}. Every feature of DESIGN section 2, head dims up to 128.
 *
 * <p>The constructor does nothing; {@link #availability()} probes the driver once and says why the
 * backend cannot run (kernels not compiled into the jar, no {@code libcuda.so.1}, no device, compute
 * capability below 8.0). {@code -Dstarling.cuda.device=N} picks the device;
 * {@code -Dstarling.cuda.splitBlocks=N} splits rows longer than {@code N} key blocks ({@link SplitRows});
 * {@code -Dstarling.cuda.kernels=mma|wmma} picks the kernels ({@link KernelFamily}, default {@code wmma});
 * {@code -Dstarling.cuda.mmaStages=2|3} forces the {@code cp.async} stages of the mma kernels
 * ({@link MmaSpecialisation#STAGES_PROPERTY}).
 *
 * <p>Backward: {@code -Dstarling.cuda.backward=true} ({@link #BACKWARD_PROPERTY}) declares the
 * {@code backward} capability and runs the float32 backward kernels ({@link BackwardGeometry}).
 * Off by default: the kernels compile in the normal build but have not yet run on a GPU.
 */
public final class CudaBackend implements SparseAttention {
    /** Selection priority: above the CPU backends. */
    public static final int PRIORITY = 100;
    /**
     * {@code -Dstarling.cuda.backward=true} declares {@code backward} (read when capabilities are
     * asked, so a plan keeps what was set when it was made). Default off: unverified on a GPU.
     */
    public static final String BACKWARD_PROPERTY = "starling.cuda.backward";

    /** Does no work; the driver is probed lazily. */
    public CudaBackend() {
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public int priority() {
        return PRIORITY;
    }

    @Override
    public Availability availability() {
        return CudaDevice.availability();
    }

    @Override
    public Capabilities capabilities() {
        Availability a = availability();
        String device = a.isAvailable() ? a.reason() : "cuda (unavailable)";
        // No CAUSAL_SHIFT: the kernels' causal rule is fixed at Nk - Nq (so no key shards of causal problems).
        return Capabilities.builder(device).precisions(precisions(KernelFamily.forCapabilities()))
                .features(Feature.CAUSAL, Feature.GROUPED_QUERY, Feature.LSE, Feature.KEY_LENGTHS, Feature.QUERY_LENGTHS)
                .feature(Feature.BACKWARD, backwardDeclared()).headDims(1, LaunchGeometry.MAX_HEAD_DIM).build();
    }

    /** @return whether {@link #BACKWARD_PROPERTY} is {@code true} (case-insensitive); anything else is off */
    static boolean backwardDeclared() {
        return Boolean.parseBoolean(System.getProperty(BACKWARD_PROPERTY));
    }

    /**
     * The precisions a kernel family runs: FP16 only with {@link KernelFamily#MMA} (its WMMA
     * fallback for other head dims is new with it, and stays off until a GPU run verified both).
     *
     * @param family the kernels
     * @return the precisions declared
     */
    static EnumSet<Precision> precisions(KernelFamily family) {
        EnumSet<Precision> p = EnumSet.of(Precision.FP32, Precision.TF32, Precision.BF16);
        if (family == KernelFamily.MMA) {
            p.add(Precision.FP16);
        }
        return p;
    }

    @Override
    public AttentionPlan plan(AttentionProblem problem, BlockLayout layout) {
        KernelFamily family = KernelFamily.fromProperty();
        int stages = MmaSpecialisation.stagesFromProperty();
        int maxBlocksPerUnit = SplitRows.maxBlocksPerUnit();
        checkPlan(problem, layout);
        return new CudaPlan(this, CudaDevice.get(), problem, layout, maxBlocksPerUnit, family, stages);
    }
}
