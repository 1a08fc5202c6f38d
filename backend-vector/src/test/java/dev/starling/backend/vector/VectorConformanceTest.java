package dev.starling.backend.vector;

import dev.starling.api.SparseAttention;
import dev.starling.conformance.SparseAttentionContract;

/** The full conformance kit for the vector backend (Surefire runs it with the incubator module). */
class VectorConformanceTest extends SparseAttentionContract {
    @Override
    protected SparseAttention createBackend() {
        return new VectorBackend();
    }
}
