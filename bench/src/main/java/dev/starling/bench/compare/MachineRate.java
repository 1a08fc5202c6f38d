package dev.starling.bench.compare;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The machine's single-precision matrix-product rate: the median of a few {@code n × n × n}
 * products in ND4J (OpenBLAS, with whatever core it picked) and in libtorch (MKL), so each
 * backend's useful GFLOP/s can be read as a fraction of what the hardware does.
 */
final class MachineRate {

    /** One library's rate. */
    record Rate(String library, double gflops, String note) {
    }

    private MachineRate() {
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
            rates.add(new Rate("ND4J sgemm (OpenBLAS)", flops / median(ms) / 1e6,
                    "OPENBLAS_CORETYPE=" + System.getenv().getOrDefault("OPENBLAS_CORETYPE", "(unset)")));
        } catch (Throwable e) {
            rates.add(new Rate("ND4J sgemm", Double.NaN, "failed: " + e));
        }
        try {
            DenseTorchPeer.engineVersion();
            try (NDManager m = NDManager.newBaseManager("PyTorch")) {
                NDArray a = m.randomUniform(0, 1, new Shape(n, n));
                NDArray b = m.randomUniform(0, 1, new Shape(n, n));
                List<Double> ms = new ArrayList<>();
                for (int r = 0; r <= reps; r++) {
                    long t0 = System.nanoTime();
                    NDArray c = a.matMul(b);
                    c.toFloatArray();
                    c.close();
                    if (r > 0) {
                        ms.add((System.nanoTime() - t0) / 1e6);
                    }
                }
                rates.add(new Rate("libtorch sgemm (MKL)", flops / median(ms) / 1e6, "PyTorch "
                        + DenseTorchPeer.engineVersion() + " via DJL"));
            }
        } catch (Throwable e) {
            rates.add(new Rate("libtorch sgemm", Double.NaN, "failed: " + e));
        }
        return rates;
    }

    static double median(List<Double> xs) {
        List<Double> s = new ArrayList<>(xs);
        s.sort(Double::compare);
        int n = s.size();
        return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
    }
}
