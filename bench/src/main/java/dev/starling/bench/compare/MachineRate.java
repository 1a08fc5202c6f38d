package dev.starling.bench.compare;

import dev.starling.api.Precision;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.openblas.global.openblas_full;
import org.bytedeco.pytorch.global.torch;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The machine's matrix-product rate per precision, so each backend's useful GFLOP/s can be read as a
 * fraction of what the hardware does in the same arithmetic. Float32: the fastest of a few
 * {@code n × n × n} products through ND4J ({@code sgemm} of the OpenBLAS every JavaCPP library here
 * shares, with the core it picked) and through libtorch's {@code matmul} (PyTorch's own dispatch onto
 * its BLAS). Bfloat16: libtorch's {@code matmul} on bf16 tensors (float32 accumulation), which this
 * libtorch build sends to oneDNN, and oneDNN to AMX or AVX512-BF16 where the CPU has them. Per precision
 * the faster library is the machine's rate. The fastest call, not the median: other load on a shared
 * machine only ever slows a call, and this line is meant to say what the hardware does.
 */
final class MachineRate {

    /** The label of libtorch's float32 product. */
    static final String TORCH = "libtorch matmul";
    /** The label of libtorch's bf16 product. */
    static final String TORCH_BF16 = "libtorch matmul bf16";

    /**
     * One library's rate in one precision.
     *
     * @param library what multiplied, e.g. {@code OpenBLAS sgemm (ND4J)}
     * @param precision the arithmetic of the product
     * @param gflops the rate, NaN when it failed
     * @param note the library's version and BLAS core, or why it failed
     */
    record Rate(String library, Precision precision, double gflops, String note) {
    }

    private MachineRate() {
    }

    /** @return the OpenBLAS core in use and the environment setting that may have forced it */
    static String openBlasCore() {
        try {
            return openblas_full.openblas_get_config().getString().strip() + "; core "
                    + openblas_full.openblas_get_corename().getString() + "; OPENBLAS_CORETYPE="
                    + System.getenv().getOrDefault("OPENBLAS_CORETYPE", "(unset)");
        } catch (Throwable e) {
            return "OpenBLAS core unknown: " + e;
        }
    }

    /**
     * Per library, the faster of two measurements (NaN, a failure, loses to any number).
     *
     * @param first rates measured first
     * @param second the same libraries measured again, in the same order
     * @return per library the faster rate
     */
    static List<Rate> faster(List<Rate> first, List<Rate> second) {
        if (first.size() != second.size()) {
            return second;
        }
        List<Rate> best = new ArrayList<>(second.size());
        for (int i = 0; i < second.size(); i++) {
            Rate a = first.get(i);
            Rate b = second.get(i);
            best.add(Double.isNaN(b.gflops()) || a.gflops() > b.gflops() ? a : b);
        }
        return best;
    }

    /**
     * Measures every library of every precision asked.
     *
     * @param n the products' size
     * @param reps timed calls of each (after one untimed)
     * @param precisions float32, bf16 or both ({@link CompareRun#PRECISIONS})
     * @return the rates, float32's first
     */
    static List<Rate> measure(int n, int reps, Set<Precision> precisions) {
        List<Rate> rates = new ArrayList<>();
        double flops = 2.0 * n * n * n;
        if (precisions.contains(Precision.FP32)) {
            try {
                INDArray a = Nd4j.rand(n, n);
                INDArray b = Nd4j.rand(n, n);
                List<Double> ms = new ArrayList<>();
                for (int r = 0; r <= reps; r++) {
                    long t0 = System.nanoTime();
                    a.mmul(b).close();
                    if (r > 0) {
                        ms.add((System.nanoTime() - t0) / 1e6);
                    }
                }
                a.close();
                b.close();
                rates.add(new Rate("OpenBLAS sgemm (ND4J)", Precision.FP32, flops / fastest(ms) / 1e6, openBlasCore()));
            } catch (Throwable e) {
                rates.add(new Rate("OpenBLAS sgemm (ND4J)", Precision.FP32, Double.NaN, "failed: " + e));
            }
        }
        for (Precision precision : precisions) {
            rates.add(torch(n, reps, precision, flops));
        }
        return rates;
    }

    /** libtorch's {@code matmul} of two {@code n × n} random matrices in {@code precision}. */
    private static Rate torch(int n, int reps, Precision precision, double flops) {
        String library = precision == Precision.FP32 ? TORCH : TORCH_BF16;
        String failure = TorchSdpaPeer.load();
        if (failure != null) {
            return new Rate(library, precision, Double.NaN, failure);
        }
        PointerScope scope = new PointerScope();
        try (scope) {
            org.bytedeco.pytorch.Tensor a = TorchSdpaPeer.in(torch.rand(n, n), precision);
            org.bytedeco.pytorch.Tensor b = TorchSdpaPeer.in(torch.rand(n, n), precision);
            List<Double> ms = new ArrayList<>();
            for (int r = 0; r <= reps; r++) {
                long t0 = System.nanoTime();
                torch.matmul(a, b).close();
                if (r > 0) {
                    ms.add((System.nanoTime() - t0) / 1e6);
                }
            }
            String engine = precision == Precision.FP32 ? "BLAS: " + blas() : bf16Engine() + "; " + cpuBf16Units();
            return new Rate(library, precision, flops / fastest(ms) / 1e6, TorchSdpaPeer.LIBRARY + ", "
                    + torch.get_num_threads() + " threads; " + engine);
        } catch (Throwable e) {
            return new Rate(library, precision, Double.NaN, "failed: " + e);
        }
    }

    /** The BLAS libtorch was built with, from its build configuration ({@code BLAS_INFO=open}: OpenBLAS). */
    private static String blas() {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("BLAS_INFO=([^,\\s]+)")
                .matcher(torch.show_config().getString());
        if (!m.find()) {
            return "unknown";
        }
        return m.group(1).equals("open") ? "OpenBLAS, the library above" : m.group(1);
    }

    /** What libtorch multiplies bf16 with: oneDNN (its MKL-DNN, with the version) or, without it, its own loops. */
    private static String bf16Engine() {
        if (!torch.hasMKLDNN()) {
            return "this libtorch build has no oneDNN: bf16 products run in its own loops, no fast bf16 path";
        }
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("MKL-DNN (v[0-9.]+)")
                .matcher(torch.show_config().getString());
        return "bf16 products through oneDNN " + (m.find() ? m.group(1) + " " : "")
                + "(AMX or AVX512-BF16 where the CPU has them)";
    }

    /** @return the CPU's bf16 units by its {@code /proc/cpuinfo} flags, e.g. {@code "CPU flags: amx_bf16 avx512_bf16"} */
    static String cpuBf16Units() {
        try {
            String flags = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("flags"))
                    .findFirst().orElse("");
            return bf16Units(flags);
        } catch (IOException | RuntimeException e) {
            return "CPU flags unknown (" + e.getMessage() + ")";
        }
    }

    /**
     * @param flags a {@code /proc/cpuinfo} flags line
     * @return which of {@code amx_bf16} and {@code avx512_bf16} it names, or that it names neither
     */
    static String bf16Units(String flags) {
        List<String> words = List.of(flags.toLowerCase(Locale.ROOT).split("[\\s:]+"));
        List<String> units = List.of("amx_bf16", "avx512_bf16").stream().filter(words::contains).toList();
        return units.isEmpty() ? "CPU flags: neither amx_bf16 nor avx512_bf16 (no bf16 units: bf16 runs on the float32 "
                + "units)" : "CPU flags: " + units.stream().collect(Collectors.joining(" "));
    }

    /**
     * The warning for a machine whose bf16 product is no faster than its float32 one.
     *
     * @param rates the machine's rate per precision
     * @return the line, or {@code null} when bf16 is faster or either rate is missing
     */
    static String slowerBf16(java.util.Map<Precision, Rate> rates) {
        Rate fp32 = rates.get(Precision.FP32);
        Rate bf16 = rates.get(Precision.BF16);
        if (fp32 == null || bf16 == null || bf16.gflops() > fp32.gflops()) {
            return null;
        }
        return String.format(Locale.ROOT, "bf16 products (%.1f GFLOP/s) are no faster than float32 ones (%.1f GFLOP/s) "
                + "here: no fast bf16 path in this libtorch build on this CPU, so a bf16 share of it flatters", bf16.gflops(),
                fp32.gflops());
    }

    static double fastest(List<Double> xs) {
        return xs.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN);
    }
}
