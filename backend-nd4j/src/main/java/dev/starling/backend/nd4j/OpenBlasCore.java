package dev.starling.backend.nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/**
 * Which CPU core OpenBLAS picked for its kernels, and whether the CPU could do better. ND4J
 * 1.0.0-M2.1 bundles OpenBLAS 0.3.19, which does not know recent CPUs: on an AVX-512 AMD EPYC it
 * falls back to an old core ("Prescott", "Barcelona") and runs matrix products several times
 * slower. OpenBLAS reads {@code OPENBLAS_CORETYPE} once, when the library loads, so the fix must be
 * in the environment before the JVM starts; the backend can only tell the user.
 */
final class OpenBlasCore {
    private static final Set<String> AVX512_CORES = Set.of("skylakex", "cooperlake", "sapphirerapids");
    private static final Set<String> AVX2_CORES = Set.of("haswell", "zen", "skylakex", "cooperlake", "sapphirerapids");

    private OpenBlasCore() {
    }

    /**
     * The core the CPU supports best, from its flags.
     *
     * @param cpuFlags the {@code flags} line of {@code /proc/cpuinfo} (empty if unknown)
     * @return {@code SkylakeX} with AVX-512, {@code Haswell} with AVX2, or {@code null}
     */
    static String bestCore(String cpuFlags) {
        Set<String> flags = Set.of(cpuFlags.toLowerCase(Locale.ROOT).split("\\s+"));
        if (flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl")) {
            return "SkylakeX";
        }
        if (flags.contains("avx2") && flags.contains("fma")) {
            return "Haswell";
        }
        return null;
    }

    /**
     * The advice for a detected core, if OpenBLAS picked an older core than the CPU supports.
     *
     * @param detected the core OpenBLAS reports, e.g. {@code Prescott}
     * @param cpuFlags the CPU flags
     * @param setting the value of {@code OPENBLAS_CORETYPE} in this process's environment, or {@code null}
     * @return a one-sentence warning naming the current setting and the fix, or {@code null} when the core fits
     */
    static String advice(String detected, String cpuFlags, String setting) {
        String best = bestCore(cpuFlags);
        if (detected == null || best == null) {
            return null;
        }
        String d = detected.toLowerCase(Locale.ROOT);
        boolean behind = best.equals("SkylakeX") ? !AVX512_CORES.contains(d) : !AVX2_CORES.contains(d);
        if (!behind) {
            return null;
        }
        String now = setting == null || setting.isBlank() ? "OPENBLAS_CORETYPE is not set"
                : "OPENBLAS_CORETYPE=" + setting.strip() + " is set";
        return "OpenBLAS picked the '" + detected + "' core (" + now + ") but this CPU supports " + best
                + " (" + (best.equals("SkylakeX") ? "AVX-512" : "AVX2") + "), so ND4J's matrix products run slower than they "
                + "could; OPENBLAS_CORETYPE=" + best + " in the environment before the JVM starts selects it.";
    }

    /** @return the CPU flags from {@code /proc/cpuinfo}, or "" where there is none */
    static String cpuFlags() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("flags")) {
                    return line.substring(line.indexOf(':') + 1);
                }
            }
        } catch (IOException | RuntimeException e) {
            return "";
        }
        return "";
    }

    /**
     * Asks the loaded OpenBLAS for its core ({@code openblas_get_corename}).
     *
     * @return the core name, or {@code null} if it cannot be read
     */
    static String detected() {
        try {
            Class<?> openblas = Class.forName("org.bytedeco.openblas.global.openblas_nolapack");
            String path = org.bytedeco.javacpp.Loader.load(openblas);
            com.sun.jna.NativeLibrary lib = com.sun.jna.NativeLibrary.getInstance(path);
            return lib.getFunction("openblas_get_corename").invokeString(new Object[0], false);
        } catch (Throwable e) {
            return null;
        }
    }
}
