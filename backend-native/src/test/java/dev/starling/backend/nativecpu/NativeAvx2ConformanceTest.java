package dev.starling.backend.nativecpu;

import dev.starling.api.SparseAttention;
import dev.starling.conformance.SparseAttentionContract;
import org.junit.jupiter.api.BeforeAll;

/** The full conformance kit with the level capped at {@link Isa#AVX2}: the float32 tiles compiled for AVX2 and the bf16 tiles in plain C. */
class NativeAvx2ConformanceTest extends SparseAttentionContract {
    @BeforeAll
    static void sayWhichPath() {
        System.out.println("starling native: level AVX2: " + NativeBackend.withIsa(Isa.AVX2).availability());
    }

    @Override
    protected SparseAttention createBackend() {
        return NativeBackend.withIsa(Isa.AVX2);
    }
}
