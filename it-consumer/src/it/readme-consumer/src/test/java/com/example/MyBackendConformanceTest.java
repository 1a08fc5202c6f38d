package com.example;

import dev.starling.api.SparseAttention;
import dev.starling.conformance.SparseAttentionContract;

/** The README's third-party path: one class, one factory method. */
class MyBackendConformanceTest extends SparseAttentionContract {
    @Override
    protected SparseAttention createBackend() {
        return new MyBackend();
    }
}
