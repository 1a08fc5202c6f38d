package dev.starling.backend.nd4j;

import dev.starling.api.SparseAttention;
import dev.starling.conformance.SparseAttentionContract;

/** The full conformance kit for the nd4j backend. */
class Nd4jConformanceTest extends SparseAttentionContract {
    @Override
    protected SparseAttention createBackend() {
        return new Nd4jBackend();
    }
}
