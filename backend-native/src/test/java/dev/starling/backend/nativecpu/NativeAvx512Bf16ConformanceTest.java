package dev.starling.backend.nativecpu;

import dev.starling.api.SparseAttention;
import dev.starling.conformance.SparseAttentionContract;
import org.junit.jupiter.api.BeforeAll;

/** The full conformance kit with the level capped at {@link Isa#AVX512_BF16}: the bf16 tiles emulated with vdpbf16ps and the AVX-512F float32 tiles (lower paths capped by the CPU). */
class NativeAvx512Bf16ConformanceTest extends SparseAttentionContract {
    @BeforeAll
    static void sayWhichPath() {
        System.out.println("starling native: level AVX512_BF16: " + NativeBackend.withIsa(Isa.AVX512_BF16).availability());
    }

    @Override
    protected SparseAttention createBackend() {
        return NativeBackend.withIsa(Isa.AVX512_BF16);
    }
}
