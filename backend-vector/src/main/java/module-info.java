/**
 * The Vector API backend: found through {@code ServiceLoader}; exports nothing. The incubating
 * {@code jdk.incubator.vector} module is optional ({@code requires static}): without
 * {@code --add-modules jdk.incubator.vector} the backend loads and reports itself unavailable, saying why.
 */
module dev.starling.backend.vector {
    requires dev.starling.api;
    requires static jdk.incubator.vector;
    // Compile time only, for the timing programs among its test sources (they measure thread CPU time).
    requires static java.management;

    provides dev.starling.api.SparseAttention with dev.starling.backend.vector.VectorBackend;
}
