package dev.starling.bench.compare;

import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.openblas.global.openblas_full;
import org.bytedeco.pytorch.global.torch;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The machine's single-precision matrix-product rate: the fastest of a few {@code n × n × n}
 * products through ND4J ({@code sgemm} of the OpenBLAS every JavaCPP library here shares, with the
 * core it picked) and through libtorch's {@code matmul} (PyTorch's own dispatch onto its BLAS), so
 * each backend's useful GFLOP/s can be read as a fraction of what the hardware does. The faster of
 * the two is the machine's rate. The fastest call, not the median: other load on a shared machine only
 * ever slows a call, and this line is meant to say what the hardware does.
 */
final class MachineRate {

    /**
     * One library's rate.
     *
     * @param library what multiplied, e.g. {@code OpenBLAS sgemm (ND4J)}
     * @param gflops the rate, NaN when it failed
     * @param note the library's version and BLAS core, or why it failed
     */
    record Rate(String library, double gflops, String note) {
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

    static List<Rate> measure(int n, int reps) {
        List<Rate> rates = new ArrayList<>();
        double flops = 2.0 * n * n * n;
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
            rates.add(new Rate("OpenBLAS sgemm (ND4J)", flops / fastest(ms) / 1e6, openBlasCore()));
        } catch (Throwable e) {
            rates.add(new Rate("OpenBLAS sgemm (ND4J)", Double.NaN, "failed: " + e));
        }
        String torchFailure = TorchSdpaPeer.load();
        if (torchFailure != null) {
            rates.add(new Rate("libtorch matmul", Double.NaN, torchFailure));
            return rates;
        }
        PointerScope scope = new PointerScope();
        try (scope) {
            org.bytedeco.pytorch.Tensor a = torch.rand(n, n);
            org.bytedeco.pytorch.Tensor b = torch.rand(n, n);
            List<Double> ms = new ArrayList<>();
            for (int r = 0; r <= reps; r++) {
                long t0 = System.nanoTime();
                torch.matmul(a, b).close();
                if (r > 0) {
                    ms.add((System.nanoTime() - t0) / 1e6);
                }
            }
            rates.add(new Rate("libtorch matmul", flops / fastest(ms) / 1e6, TorchSdpaPeer.LIBRARY + ", "
                    + torch.get_num_threads() + " threads; BLAS: " + blas()));
        } catch (Throwable e) {
            rates.add(new Rate("libtorch matmul", Double.NaN, "failed: " + e));
        }
        return rates;
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

    static double fastest(List<Double> xs) {
        return xs.stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN);
    }
}
