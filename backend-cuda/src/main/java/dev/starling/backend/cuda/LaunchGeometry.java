package dev.starling.backend.cuda;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Precision;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.WorkPlan;

/**
 * How a plan launches its kernels; pure Java, so it is unit-tested without a GPU.
 *
 * <p>The attention kernel's grid runs over the {@link WorkPlan}'s packed units:
 * {@code gridX = unitsPerLayout · tilesPerBlock} (unit {@code x / tilesPerBlock}, 64-row tile
 * {@code x % tilesPerBlock} of its query block) and {@code gridY = B · Hq}. When the work plan
 * splits rows, the merge kernel {@code starling_merge} runs after it on a
 * {@code splitsPerLayout × (B · Hq)} grid, and the split parts write into a workspace of
 * {@code B · Hq · slotsPerLayout · queryBlock} rows: {@code Dv} floats of normalised partial output
 * and one float of LSE each. The mma kernels read the same grid heads-fastest (the CTA dispatched
 * {@code L}-th, {@code L = y · gridX + x}, takes unit tile {@code L / gridY} of head
 * {@code L % gridY}), so every head's longest units start first. An {@code mma.sync} kernel
 * ({@link #mma()} not null) whose precision
 * is BF16 or FP16 reads 16-bit inputs: {@link #convertKernel()} first converts float32 inputs on a
 * {@code convertGridX × 3} grid (one row of the grid per tensor).
 *
 * @param kernel the attention kernel's symbol for float32 inputs
 * @param threads threads per CTA of the attention kernel
 * @param gridX {@code unitsPerLayout · tilesPerBlock}
 * @param gridY {@code B · Hq}
 * @param tilesPerBlock 64-row tiles per query block: {@code ceil(queryBlock / 64)}
 * @param tileK keys per key tile (64, or 32 when 64 does not fit the device's shared memory; an mma kernel's {@code kBlockN})
 * @param shared the shared-memory carve-up; {@code shared.bytes()} is launched
 * @param mergeGridX split rows per head layout: the merge kernel's grid x, 0 when nothing is split
 * @param workspaceRows rows of the split-row workspace, 0 when nothing is split
 * @param workspaceOutFloats floats of its partial outputs: {@code workspaceRows · Dv}
 * @param mma the {@code mma.sync} specialisation run, or {@code null} for the fp32 and WMMA kernels
 * @param convertKernel the kernel converting float32 inputs to 16-bit copies before {@code kernel}, or {@code null}
 * @param convertGridX grid x of {@code convertKernel}, 0 when there is none
 * @param kernel16 the attention kernel for inputs the caller passes in 16 bits ({@link CudaPlan#forward16}),
 *        or {@code null} when the precision is not BF16 or FP16
 */
public record LaunchGeometry(String kernel, int threads, int gridX, int gridY, int tilesPerBlock, int tileK,
                             SharedLayout shared, int mergeGridX, long workspaceRows, long workspaceOutFloats,
                             MmaSpecialisation mma, String convertKernel, int convertGridX, String kernel16) {
    /** Query rows per CTA ({@code TILE_Q} in the .cu). */
    public static final int TILE_Q = 64;
    /** Most keys per key tile ({@code MAX_TILE_K} in the .cu). */
    public static final int MAX_TILE_K = 64;
    /** Largest head dim and value dim the kernels take. */
    public static final int MAX_HEAD_DIM = 128;
    /** Threads of the fp32 kernel: 4 per query row ({@code FP32_THREADS} in the .cu). */
    public static final int FP32_THREADS = 256;
    /** Threads of the tensor-core kernels: 4 warps of 16 rows ({@code MMA_THREADS} in the .cu). */
    public static final int MMA_THREADS = 128;
    /** Threads of the merge kernel ({@code MERGE_THREADS} in the .cu). */
    public static final int MERGE_THREADS = 128;
    /** Threads of the conversion kernels ({@code CONVERT_THREADS} in the .cu). */
    public static final int CONVERT_THREADS = 256;
    /** Most CTAs of a conversion launch per tensor (the kernel strides over the rest). */
    static final int MAX_CONVERT_BLOCKS = 4096;
    /** Symbol of the kernel that merges split rows. */
    public static final String MERGE_KERNEL = "starling_merge";
    /** Bytes an mma kernel's input addresses must be a multiple of ({@code cp.async} copies 16 bytes). */
    public static final int MMA_INPUT_ALIGN = 16;
    /** CUDA's limit on gridDim.y. */
    static final int MAX_GRID_Y = 65_535;

    /**
     * What a device offers the launch.
     *
     * @param maxSharedPerBlock opt-in shared memory per CTA, bytes
     * @param sharedPerSm shared memory per SM, bytes
     */
    public record DeviceLimits(int maxSharedPerBlock, int sharedPerSm) {
    }

    /**
     * The fp32 and WMMA kernels' launches ({@link KernelFamily#WMMA}).
     *
     * @param problem the problem
     * @param layout its layout
     * @param work the layout's work plan (units and split rows)
     * @param maxSharedBytes the device's opt-in shared memory per block
     * @return the geometry
     * @throws UnsupportedOperationException if the problem cannot be launched (head dim above 128, too many
     *         batch × heads or units, no key tile fits the shared memory, a workspace beyond 2^63 bytes)
     */
    public static LaunchGeometry of(AttentionProblem problem, BlockLayout layout, WorkPlan work, int maxSharedBytes) {
        return of(problem, layout, work, new DeviceLimits(maxSharedBytes, maxSharedBytes), KernelFamily.WMMA, 0);
    }

    /**
     * Chooses the launches for a problem and its work plan: with {@link KernelFamily#MMA}, the
     * {@link MmaSpecialisation} of the precision and head dims when one exists and some stage count
     * fits the device's shared memory; otherwise the fp32 or WMMA kernel of the precision.
     *
     * @param problem the problem
     * @param layout its layout
     * @param work the layout's work plan (units and split rows)
     * @param limits the device's shared memory
     * @param family the kernels asked for
     * @param forcedStages stages of an mma kernel ({@link MmaSpecialisation#STAGES_PROPERTY}), 0 to choose
     * @return the geometry
     * @throws UnsupportedOperationException if the problem cannot be launched (head dim above 128, too many
     *         batch × heads or units, no key tile fits the shared memory, a workspace beyond 2^63 bytes)
     */
    public static LaunchGeometry of(AttentionProblem problem, BlockLayout layout, WorkPlan work, DeviceLimits limits,
                                    KernelFamily family, int forcedStages) {
        int d = problem.headDim();
        int dv = problem.valueDim();
        if (d > MAX_HEAD_DIM || dv > MAX_HEAD_DIM) {
            throw new UnsupportedOperationException("cuda backend supports head dim and value dim up to " + MAX_HEAD_DIM
                    + ", got D=" + d + ", Dv=" + dv);
        }
        if (work.layout() != layout) {
            throw new IllegalArgumentException("work plan was made for another layout than the problem's");
        }
        long gridY = (long) problem.batch() * problem.queryHeads();
        if (gridY > MAX_GRID_Y) {
            throw new UnsupportedOperationException("cuda backend supports batch × query heads up to " + MAX_GRID_Y
                    + ", got " + gridY);
        }
        int tilesPerBlock = (layout.queryBlock() + TILE_Q - 1) / TILE_Q;
        long gridX = (long) work.unitsPerLayout() * tilesPerBlock;
        if (gridX > Integer.MAX_VALUE) {
            throw new UnsupportedOperationException("too many CTAs per head: " + work.unitsPerLayout() + " units × "
                    + tilesPerBlock + " tiles");
        }
        long workspaceRows;
        long workspaceOutFloats;
        try {
            workspaceRows = Math.multiplyExact(Math.multiplyExact(gridY, (long) work.slotsPerLayout()),
                    (long) layout.queryBlock());
            workspaceOutFloats = Math.multiplyExact(workspaceRows, (long) dv);
            Math.multiplyExact(workspaceOutFloats + workspaceRows, (long) Float.BYTES);
        } catch (ArithmeticException e) {
            throw new UnsupportedOperationException("split-row workspace of " + gridY + " heads × " + work.slotsPerLayout()
                    + " slots × " + layout.queryBlock() + " rows × " + dv + " features overflows");
        }
        Precision p = problem.precision();
        if (family == KernelFamily.MMA) {
            MmaSpecialisation spec = MmaSpecialisation.find(p, d, dv).orElse(null);
            int stages = spec == null ? 0 : spec.chooseStages(limits.maxSharedPerBlock(), limits.sharedPerSm(), forcedStages);
            if (stages > 0) {
                String convert = spec.convertKernel();
                return new LaunchGeometry(spec.symbol(), MmaSpecialisation.THREADS, (int) gridX, (int) gridY, tilesPerBlock,
                        spec.blockN(), spec.shared(stages), work.splitsPerLayout(), workspaceRows, workspaceOutFloats, spec,
                        convert, convert == null ? 0 : convertGridX(problem), spec.readsSixteenBit() ? spec.symbol() : null);
            }
        }
        int threads = p == Precision.FP32 ? FP32_THREADS : MMA_THREADS;
        for (int tileK : new int[] {MAX_TILE_K, MAX_TILE_K / 2}) {
            SharedLayout shared = SharedLayout.of(p, d, dv, tileK);
            if (shared.bytes() <= limits.maxSharedPerBlock()) {
                return new LaunchGeometry(kernelName(p), threads, (int) gridX, (int) gridY, tilesPerBlock, tileK, shared,
                        work.splitsPerLayout(), workspaceRows, workspaceOutFloats, null, null, 0, sixteenBitKernelName(p));
            }
        }
        throw new UnsupportedOperationException("cuda backend: D=" + d + ", Dv=" + dv + " in " + p + " needs "
                + SharedLayout.of(p, d, dv, MAX_TILE_K / 2).bytes() + " bytes of shared memory per block; the device allows "
                + limits.maxSharedPerBlock());
    }

    /** Grid x of a conversion: enough CTAs for the largest tensor at one element a thread, at most {@link #MAX_CONVERT_BLOCKS}. */
    static int convertGridX(AttentionProblem p) {
        long b = p.batch();
        long largest = Math.max(b * p.queryHeads() * p.queryLength() * p.headDim(),
                Math.max(b * p.kvHeads() * p.keyLength() * p.headDim(), b * p.kvHeads() * p.keyLength() * p.valueDim()));
        return (int) Math.max(1, Math.min(MAX_CONVERT_BLOCKS, (largest + CONVERT_THREADS - 1) / CONVERT_THREADS));
    }

    /** @return the dynamic shared memory of one attention CTA, in bytes */
    public int sharedBytes() {
        return shared.bytes();
    }

    /** @return whether split rows are merged by a second kernel (and a workspace is needed) */
    public boolean merges() {
        return mergeGridX > 0;
    }

    /** @return whether float32 inputs are converted to 16-bit copies before the attention kernel */
    public boolean converts() {
        return convertKernel != null;
    }

    /** @return bytes of the workspace's partial outputs, 0 when nothing is split */
    public long workspaceOutBytes() {
        return workspaceOutFloats * Float.BYTES;
    }

    /** @return bytes of the workspace's partial LSEs, 0 when nothing is split */
    public long workspaceLseBytes() {
        return workspaceRows * Float.BYTES;
    }

    /** @return e.g. {@code starling_mma_bf16_d128 (3 stages) after starling_convert_bf16}, for logs */
    public String describe() {
        String s = kernel + (mma != null ? " (" + shared.stages() + " stages)" : "");
        s += converts() ? " after " + convertKernel : "";
        return merges() ? s + " + " + MERGE_KERNEL : s;
    }

    /** @return the fp32 or WMMA kernel symbol for a precision (float32 inputs) */
    static String kernelName(Precision p) {
        return switch (p) {
            case FP32 -> "starling_fp32";
            case TF32 -> "starling_tf32";
            case BF16 -> "starling_bf16";
            case FP16 -> "starling_fp16";
        };
    }

    /** @return the WMMA kernel symbol reading 16-bit inputs, or {@code null} for FP32 and TF32 */
    static String sixteenBitKernelName(Precision p) {
        return switch (p) {
            case FP32, TF32 -> null;
            case BF16 -> "starling_bf16_in16";
            case FP16 -> "starling_fp16_in16";
        };
    }

    /** Which inputs a call brings. */
    public enum Inputs {
        /** float32 tensors: host arrays copied to the device, or the caller's float32 device pointers. */
        FLOAT32,
        /** 16-bit tensors in the plan's precision ({@link CudaPlan#forward16}). */
        SIXTEEN_BIT
    }

    /**
     * What one call launches.
     *
     * @param geometry the geometry launched (the plan's, or its fallback)
     * @param kernel the attention kernel's symbol
     * @param convert whether {@code geometry.convertKernel()} runs first
     */
    public record Launch(LaunchGeometry geometry, String kernel, boolean convert) {
    }

    /**
     * Picks the launch of one call. An mma kernel copies its inputs with {@code cp.async}, 16 bytes
     * at a time, so the inputs it reads directly (the caller's 16-bit tensors, or float32 for tf32)
     * must start on a {@link #MMA_INPUT_ALIGN}-byte boundary (rows are, when the tensor is: D is 64
     * or 128); a call with other addresses runs the {@code fallback} (WMMA) kernels. Converted
     * copies are the plan's own, always aligned.
     *
     * @param primary the plan's geometry
     * @param fallback the WMMA geometry of the same problem, used when {@code primary} is an mma
     *        geometry and the inputs are misaligned; may be {@code null} when {@code primary} is not
     * @param inputs what the call brings
     * @param q address of the queries the call brings
     * @param k address of the keys
     * @param v address of the values
     * @return the launch
     * @throws UnsupportedOperationException if 16-bit inputs are given to a plan whose precision is not BF16 or FP16
     */
    public static Launch select(LaunchGeometry primary, LaunchGeometry fallback, Inputs inputs, long q, long k, long v) {
        boolean aligned = q % MMA_INPUT_ALIGN == 0 && k % MMA_INPUT_ALIGN == 0 && v % MMA_INPUT_ALIGN == 0;
        if (inputs == Inputs.SIXTEEN_BIT) {
            if (primary.kernel16() == null) {
                throw new UnsupportedOperationException("16-bit inputs need a plan in BF16 or FP16; this plan runs "
                        + primary.kernel());
            }
            LaunchGeometry g = primary.mma() == null || aligned ? primary : fallback;
            return new Launch(g, g.kernel16(), false);
        }
        if (primary.mma() != null && !primary.converts() && !aligned) {
            return new Launch(fallback, fallback.kernel(), false);
        }
        return new Launch(primary, primary.kernel(), primary.converts());
    }
}
