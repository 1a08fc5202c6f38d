package dev.starling.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.conformance.AttentionCase;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * {@link MmaKernelCheck} from the build: its cases are all mma shapes (checked everywhere); the
 * whole check runs where a GPU is usable and skips elsewhere.
 */
class MmaKernelCheckTest {
    @Test
    void everyCaseRunsAnMmaKernel() {
        for (int d : new int[] {64, 128}) {
            Set<String> names = new HashSet<>();
            for (AttentionCase c : MmaKernelCheck.cases(d)) {
                AttentionProblem p = c.problem();
                assertEquals(d, p.headDim(), c.name());
                assertEquals(d, p.valueDim(), c.name());
                assertEquals(true, names.add(c.name()), "unique name " + c.name());
                assertEquals(true, MmaKernelCheck.pairs(c) > 0, c.name());
            }
        }
    }

    @Test
    void mmaKernelsMatchTheOracleOnAGpu() {
        assumeTrue(new CudaBackend().availability().isAvailable(), "no usable GPU: " + new CudaBackend().availability());
        assertEquals(0, MmaKernelCheck.run(System.out, true), "see the FAIL lines above");
    }
}
