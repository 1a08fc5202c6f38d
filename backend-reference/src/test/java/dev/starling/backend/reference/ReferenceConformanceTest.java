package dev.starling.backend.reference;

import dev.starling.api.SparseAttention;
import dev.starling.conformance.SparseAttentionContract;

/** The full conformance kit for the reference backend. */
class ReferenceConformanceTest extends SparseAttentionContract {
    @Override
    protected SparseAttention createBackend() {
        return new ReferenceBackend();
    }
}
