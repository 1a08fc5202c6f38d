package dev.starling.backend.nd4j;

import dev.starling.api.Availability;
import org.nd4j.linalg.factory.Nd4j;

/** Loads ND4J once per process, records what it found, and warns once about a slow OpenBLAS core. */
final class Nd4jRuntime {
    private static final System.Logger LOG = System.getLogger("dev.starling.backend.nd4j");
    private static Availability availability;
    private static String description = "";

    private Nd4jRuntime() {
    }

    static synchronized Availability availability() {
        if (availability == null) {
            try {
                Nd4j.create(1).close();
                String vendor = String.valueOf(Nd4j.factory().blas().getBlasVendor());
                String core = OpenBlasCore.detected();
                description = "ND4J " + Nd4j.getBackend().getClass().getSimpleName() + ", BLAS " + vendor
                        + (core != null ? ", OpenBLAS core " + core : "");
                String advice = OpenBlasCore.advice(core, OpenBlasCore.cpuFlags());
                if (advice != null) {
                    LOG.log(System.Logger.Level.WARNING, advice);
                    description += "; " + advice;
                }
                availability = Availability.available(description);
            } catch (Throwable e) {
                Throwable root = e;
                while (root.getCause() != null && root.getCause() != root) {
                    root = root.getCause();
                }
                availability = Availability.unavailable("ND4J could not be loaded: " + e
                        + (root != e ? " (caused by " + root + ")" : ""));
            }
        }
        return availability;
    }

    static synchronized String describe() {
        availability();
        int cut = description.indexOf(';');
        return cut < 0 ? description : description.substring(0, cut);
    }
}
