package dev.starling.backend.cuda;

import dev.starling.api.SparseAttention;
import dev.starling.conformance.SparseAttentionContract;

/**
 * The full conformance kit for the cuda backend. Without a usable GPU (CI, most machines) every
 * rule skips with the backend's reason; on a GPU machine it runs every rule in fp32, tf32 and bf16.
 */
class CudaConformanceTest extends SparseAttentionContract {
    @Override
    protected SparseAttention createBackend() {
        return new CudaBackend();
    }
}
