package dev.starling.backend.nativecpu;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * The native library ({@code src/main/c}, compiled into this jar by the build) and its three entry
 * points. The library is loaded once, on first use, from the class-path resource {@value #RESOURCE}:
 * copied to a temporary file, loaded, and the file deleted. When that fails (no library in the jar,
 * another operating system or architecture, a refused load) {@link #loadFailure()} says why and
 * nothing here may be called.
 *
 * <p>The native code trusts its arguments: every check happens in Java first ({@link NativePlan}).
 */
final class NativeKernels {
    /** Where the build puts the library. */
    static final String RESOURCE = "/dev/starling/backend/nativecpu/libstarling_native.so";

    /** Status of {@link #forward}: done. */
    static final int OK = 0;
    /** Status of {@link #forward}: an input holds NaN or ±∞; nothing reliable was written. */
    static final int NONFINITE = 1;

    /** Bits of {@link #probe()}, as {@code starling_native.c} sets them. */
    static final int HAS_AVX2 = 1;
    static final int HAS_AVX512F = 2;
    static final int HAS_AVX512BF16 = 4;
    static final int HAS_AMX = 8;
    static final int AMX_REFUSED = 16;

    /** Ints of the geometry array, in the order {@code starling_native.c} reads them. */
    static final int GEOMETRY_INTS = 13;

    private static final class Holder {
        static final String FAILURE = load(RESOURCE);
    }

    private NativeKernels() {
    }

    /**
     * Loads the library from a class-path resource.
     *
     * @param resource the resource name
     * @return {@code null} when loaded, else why not
     */
    static String load(String resource) {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        if (!os.startsWith("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
            return "the native kernels are built for Linux x86-64 only (this JVM runs on " + os + " " + arch + ")";
        }
        try (InputStream in = NativeKernels.class.getResourceAsStream(resource)) {
            if (in == null) {
                return "the native library was not compiled into this jar (no gcc at build time, or "
                        + "STARLING_SKIP_NATIVE=1): " + resource + " is missing";
            }
            Path file = Files.createTempFile("starling-native-", ".so");
            try {
                Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
                System.load(file.toAbsolutePath().toString());
            } finally {
                // Linux keeps a loaded library mapped after its file is gone.
                Files.deleteIfExists(file);
            }
            return null;
        } catch (IOException | UnsatisfiedLinkError | SecurityException e) {
            return "the native library did not load: " + e;
        }
    }

    /** @return {@code null} when the library is loaded, else why it is not */
    static String loadFailure() {
        return Holder.FAILURE;
    }

    /**
     * @param flags the bits of {@link #probe()}
     * @return the highest level the CPU (and the operating system) can run
     */
    static Isa machineIsa(int flags) {
        if ((flags & HAS_AMX) != 0) {
            return Isa.AMX;
        }
        if ((flags & HAS_AVX512BF16) != 0) {
            return Isa.AVX512_BF16;
        }
        if ((flags & HAS_AVX512F) != 0) {
            return Isa.AVX512;
        }
        return (flags & HAS_AVX2) != 0 ? Isa.AVX2 : Isa.PORTABLE;
    }

    /**
     * @param flags the bits of {@link #probe()}
     * @return a note when the CPU has AMX but Linux refused the tile state, else {@code null}
     */
    static String amxNote(int flags) {
        if ((flags & AMX_REFUSED) == 0) {
            return null;
        }
        return "the CPU has AMX but Linux refused the tile state (arch_prctl(ARCH_REQ_XCOMP_PERM) failed, errno "
                + (flags >>> 8) + "): bf16 runs on avx512-bf16";
    }

    /**
     * @param status a negative status of {@link #forward}
     * @return what it means
     */
    static String describe(int status) {
        return switch (status) {
            case -1 -> "out of native memory (a pinned array or a worker's scratch)";
            case -2 -> "no thread could be started";
            case -3 -> "the AMX tile configuration was refused";
            case -4 -> "unknown kernel path or geometry";
            default -> "status " + status;
        };
    }

    /**
     * Runs CPUID and XGETBV once and, where the CPU has AMX, asks Linux for the tile state.
     *
     * @return the {@code HAS_*} bits; with {@link #AMX_REFUSED}, the errno in bits 8 to 23
     */
    static native int probe();

    /**
     * @param path {@link KernelPath#code()}
     * @param geometry the {@value #GEOMETRY_INTS} geometry ints of {@link NativePlan}
     * @return bytes of the direct scratch buffer a call needs (packed K and V), or {@code −1} for a bad path
     */
    static native long scratchBytes(int path, int[] geometry);

    /**
     * One forward call: packs K and V into {@code scratch}, then computes every work item on the
     * calling thread and {@code threads − 1} helpers. Arrays are pinned for the call.
     *
     * @param path {@link KernelPath#code()}
     * @param geometry the geometry ints. Not modified.
     * @param strides {@code (b, h, n)} strides in floats of q, k, v and out, 12 longs. Not modified.
     * @param scale2 {@code s·log2 e}
     * @param q queries. Not modified.
     * @param k keys. Not modified.
     * @param v values. Not modified.
     * @param out output. Modified.
     * @param lse log-sum-exp, or {@code null}. Modified.
     * @param items {@code (bh, packed unit)} pairs in claiming order. Not modified.
     * @param units {@link dev.starling.api.plan.WorkPlan#packUnits()}. Not modified.
     * @param keyBlocks {@link dev.starling.api.plan.WorkPlan#packKeyBlocks()}. Not modified.
     * @param rowKeyEnd per {@code (b, i)}, the end of the keys the row reads, 0 for a padded row. Not modified.
     * @param partOut split rows' partial outputs, or {@code null} without splits. Modified.
     * @param partLse their LSE, or {@code null}. Modified.
     * @param scratch a direct buffer of {@link #scratchBytes} bytes. Modified.
     * @return {@link #OK}, {@link #NONFINITE} or a negative status ({@link #describe})
     */
    static native int forward(int path, int[] geometry, long[] strides, float scale2, float[] q, float[] k, float[] v,
                              float[] out, float[] lse, int[] items, int[] units, int[] keyBlocks, int[] rowKeyEnd,
                              float[] partOut, float[] partLse, ByteBuffer scratch);
}
