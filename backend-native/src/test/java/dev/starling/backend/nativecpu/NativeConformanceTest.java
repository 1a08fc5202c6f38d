package dev.starling.backend.nativecpu;

import dev.starling.api.SparseAttention;
import dev.starling.conformance.SparseAttentionContract;
import org.junit.jupiter.api.BeforeAll;

/** The full conformance kit, fp32 and bf16, on the highest paths this machine has (printed first). */
class NativeConformanceTest extends SparseAttentionContract {
    @BeforeAll
    static void sayWhichPath() {
        System.out.println("starling native: machine paths: " + new NativeBackend().availability());
    }

    @Override
    protected SparseAttention createBackend() {
        return new NativeBackend();
    }
}
