package dev.starling.bench.compare;

import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.openblas.global.openblas_full;
import org.bytedeco.pytorch.global.torch;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The machine's single-precision matrix-product rate: the median of a few {@code n × n × n}
 * products through ND4J ({@code sgemm} of the OpenBLAS every JavaCPP library here shares, with the
 * core it picked) and through libtorch's {@code matmul} (PyTorch's own dispatch onto its BLAS), so
 * each backend's useful GFLOP/s can be read as a fraction of what the hardware does. The faster of
 * the two is the machine's rate.
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
            return "OpenBLAS " + openblas_full.openblas_get_config().getString().strip() + "; core "
                    + openblas_full.openblas_get_corename().getString() + "; OPENBLAS_CORETYPE="
                    + System.getenv().getOrDefault("OPENBLAS_CORETYPE", "(unset)");
        } catch (Throwable e) {
            return "OpenBLAS core unknown: " + e;
        }
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
            rates.add(new Rate("OpenBLAS sgemm (ND4J)", flops / median(ms) / 1e6, openBlasCore()));
        } catch (Throwable e) {
            rates.add(new Rate("OpenBLAS sgemm (ND4J)", Double.NaN, "failed: " + e));
        }
        String torchFailure = TorchSdpaPeer.load();
        if (torchFailure != null) {
            rates.add(new Rate("libtorch matmul", Double.NaN, torchFailure));
            return rates;
        }
        try (PointerScope scope = new PointerScope()) {
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
            rates.add(new Rate("libtorch matmul", flops / median(ms) / 1e6, TorchSdpaPeer.LIBRARY + ", "
                    + torch.get_num_threads() + " threads; BLAS: " + blas()));
        } catch (Throwable e) {
            rates.add(new Rate("libtorch matmul", Double.NaN, "failed: " + e));
        }
        return rates;
    }

    /** The BLAS libtorch was built with, from its build configuration ({@code BLAS_INFO=open}: OpenBLAS). */
    private static String blas() {
        String config = torch.show_config().getString();
        for (String part : config.split("[,\\n]")) {
            String s = part.strip();
            if (s.startsWith("BLAS_INFO=")) {
                String name = s.substring("BLAS_INFO=".length());
                return name.equals("open") ? "OpenBLAS (the same library as above)" : name;
            }
        }
        return "unknown";
    }

    static double median(List<Double> xs) {
        List<Double> s = new ArrayList<>(xs);
        s.sort(Double::compare);
        int n = s.size();
        return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
    }
}
