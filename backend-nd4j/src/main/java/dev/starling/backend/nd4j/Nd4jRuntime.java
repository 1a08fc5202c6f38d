package dev.starling.backend.nd4j;

import dev.starling.api.Availability;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Loads ND4J once per process and records what it found. A slow OpenBLAS core is part of the
 * description ({@code starling backends} shows it on the nd4j line) and is logged once per process,
 * when the first nd4j plan is created — never merely because the backend was looked at.
 */
final class Nd4jRuntime {
    private static final System.Logger LOG = System.getLogger("dev.starling.backend.nd4j");
    private static Availability availability;
    private static String description = "";
    private static String advice;
    private static boolean warned;

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
                advice = OpenBlasCore.advice(core, OpenBlasCore.cpuFlags(), System.getenv("OPENBLAS_CORETYPE"));
                if (advice != null) {
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

    /** Logs the OpenBLAS advice, if any, the first time a plan is created in this process. */
    static synchronized void warnOnce() {
        availability();
        if (advice != null && !warned) {
            warned = true;
            LOG.log(System.Logger.Level.WARNING, advice);
        }
    }

    static synchronized String describe() {
        availability();
        int cut = description.indexOf(';');
        return cut < 0 ? description : description.substring(0, cut);
    }
}
