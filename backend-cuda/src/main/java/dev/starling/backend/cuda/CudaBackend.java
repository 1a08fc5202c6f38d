package dev.starling.backend.cuda;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.Option;
import dev.starling.api.PlanOptions;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.pattern.BlockLayout;
import java.util.EnumSet;
import java.util.List;

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

    /** The kernels ({@link KernelFamily}); default {@value KernelFamily#PROPERTY} or wmma. */
    public static final Option<KernelFamily> KERNELS = Option.of("kernels", KernelFamily.class, KernelFamily.PROPERTY,
            () -> KernelFamily.DEFAULT, KernelFamily::parse, v -> v, "kernels: wmma (default) or mma");
    /** Split rows longer than N key blocks ({@link SplitRows}); default {@value SplitRows#PROPERTY} or no split. */
    public static final Option<Integer> SPLIT_BLOCKS = Option.of("split-blocks", Integer.class, SplitRows.PROPERTY,
            () -> SplitRows.OFF, SplitRows::maxBlocksPerUnit, v -> {
                if (v < 1) {
                    throw new IllegalArgumentException("must be a whole number >= 1, got " + v);
                }
                return v;
            }, "split rows longer than N key blocks into work units (default: no split)");
    /** Forced {@code cp.async} stages of the mma kernels, 2 or 3 (0: chosen per device). */
    public static final Option<Integer> MMA_STAGES = Option.of("mma-stages", Integer.class,
            MmaSpecialisation.STAGES_PROPERTY, () -> 0, MmaSpecialisation::parseStages, v -> {
                if (v != 0 && v != 2 && v != 3) {
                    throw new IllegalArgumentException("must be 2 or 3 (or 0 to choose), got " + v);
                }
                return v;
            }, "cp.async stages of the mma kernels: 2 or 3 (default: chosen per device)");
    /** Declares and runs the float32 backward kernels (experimental: unverified on a GPU); "true" only turns it on. */
    public static final Option<Boolean> BACKWARD = Option.of("backward", Boolean.class, BACKWARD_PROPERTY,
            () -> Boolean.FALSE, text -> Boolean.parseBoolean(text), v -> v,
            "experimental: declare and run the backward kernels (true to enable; unverified on a GPU)");
    /** The device ordinal; the first plan's device is opened for the process. */
    public static final Option<Integer> DEVICE = Option.of("device", Integer.class, CudaDevice.DEVICE_PROPERTY,
            () -> 0, CudaBackend::parseOrdinal, v -> {
                if (v < 0) {
                    throw new IllegalArgumentException("must be a device ordinal >= 0, got " + v);
                }
                return v;
            }, "the CUDA device ordinal (default 0; one device per process)");

    private static final List<Option<?>> OPTIONS = List.of(KERNELS, SPLIT_BLOCKS, MMA_STAGES, BACKWARD, DEVICE);

    private static Integer parseOrdinal(String text) {
        if (text.isEmpty() || text.length() > 4 || !text.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new IllegalArgumentException("must be a device ordinal (0, 1, ...), got \"" + text + "\"");
        }
        return Integer.parseInt(text);
    }

    /** Does no work; the driver is probed lazily. */
    public CudaBackend() {
    }

    @Override
    public List<Option<?>> options() {
        return OPTIONS;
    }

    /**
     * The defaults the system properties give, for {@link #capabilities()} (which never throws: a bad
     * value is reported when a plan is made).
     */
    private static PlanOptions defaultsForCapabilities() {
        try {
            return PlanOptions.fromSystemProperties(OPTIONS);
        } catch (IllegalArgumentException e) {
            return PlanOptions.none();
        }
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
        return capabilities(defaultsForCapabilities());
    }

    /** @return what a plan with these resolved options computes (the kernels decide FP16, the flag backward) */
    Capabilities capabilities(PlanOptions resolved) {
        Availability a = availability();
        String device = a.isAvailable() ? a.reason() : "cuda (unavailable)";
        // CAUSAL_SHIFT: the problem's shift reaches the kernels' mask (Params.causalShift), so causal
        // problems can run as key shards.
        return Capabilities.builder(device).precisions(precisions(resolved.get(KERNELS)))
                .features(Feature.CAUSAL, Feature.CAUSAL_SHIFT, Feature.GROUPED_QUERY, Feature.LSE, Feature.KEY_LENGTHS, Feature.QUERY_LENGTHS)
                .feature(Feature.BACKWARD, resolved.get(BACKWARD)).headDims(1, LaunchGeometry.MAX_HEAD_DIM).build();
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
        return plan(problem, layout, PlanOptions.none());
    }

    /**
     * {@inheritDoc} Takes {@link #KERNELS}, {@link #SPLIT_BLOCKS}, {@link #MMA_STAGES}, {@link #BACKWARD} and
     * {@link #DEVICE}: a plan's kernels, split and stages are its own, so two plans with different kernels
     * run side by side on one device.
     */
    @Override
    public AttentionPlan plan(AttentionProblem problem, BlockLayout layout, PlanOptions options) {
        PlanOptions resolved = checkOptions(options);
        Capabilities planCapabilities = capabilities(resolved);
        checkPlan(problem, layout, planCapabilities);
        CudaDevice device = CudaDevice.get();
        if (device.ordinal != resolved.get(DEVICE)) {
            throw new IllegalArgumentException("option device=" + resolved.get(DEVICE) + ": this process opened device "
                    + device.ordinal + " (one device per process)");
        }
        return new CudaPlan(this, planCapabilities, device, problem, layout, resolved.get(SPLIT_BLOCKS),
                resolved.get(KERNELS), resolved.get(MMA_STAGES));
    }
}
