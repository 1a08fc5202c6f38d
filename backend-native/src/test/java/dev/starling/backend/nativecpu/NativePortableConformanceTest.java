package dev.starling.backend.nativecpu;

import dev.starling.api.SparseAttention;
import dev.starling.conformance.SparseAttentionContract;
import org.junit.jupiter.api.BeforeAll;

/**
 * The full conformance kit on the portable paths: the AMX tile algorithm with its tiles emulated in
 * plain C (bf16) and the float32 tiles in plain C, so the tile kernel is checked on any machine.
 */
class NativePortableConformanceTest extends SparseAttentionContract {
    @BeforeAll
    static void sayWhichPath() {
        System.out.println("starling native: portable paths: " + NativeBackend.withIsa(Isa.PORTABLE).availability());
    }

    @Override
    protected SparseAttention createBackend() {
        return NativeBackend.withIsa(Isa.PORTABLE);
    }
}
