package dev.starling.backend.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.AttentionCase;
import dev.starling.conformance.CaseGenerator;
import dev.starling.conformance.Comparison;
import dev.starling.conformance.Tolerance;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The reference backend against the float64 dense oracle, one test per generated case (the
 * conformance contract, {@link ReferenceConformanceTest}, covers the remaining rules).
 */
class ReferenceAgreementTest {
    private static final long SEED = 20261128L;

    static Stream<AttentionCase> cases() {
        return CaseGenerator.standard(SEED).stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void agreesWithDenseOracleWithinFp32Tolerance(AttentionCase c) {
        Tensor out = c.newOutput();
        Arrays.fill(out.data(), Float.NaN); // poison: every element must be written
        float[] lse = c.newLse();
        Arrays.fill(lse, Float.NaN);
        float[] qBefore = c.q().data().clone();
        float[] kBefore = c.k().data().clone();
        float[] vBefore = c.v().data().clone();
        try (AttentionPlan plan = ReferenceBackend.withThreads(2).plan(c.problem(), c.layout())) {
            plan.forward(c.q(), c.k(), c.v(), out, lse);
        }
        Comparison.Outcome outcome = Comparison.compare(c.problem(), c.expected(), out, lse, Tolerance.FP32);
        assertTrue(outcome.ok(), () -> c + ": " + outcome.message());
        assertArrayEquals(qBefore, c.q().data(), "q was modified");
        assertArrayEquals(kBefore, c.k().data(), "k was modified");
        assertArrayEquals(vBefore, c.v().data(), "v was modified");
    }

    @Test
    void poolSizeDoesNotChangeTheNumbers() {
        AttentionCase c = CaseGenerator.standard(SEED).stream().filter(x -> x.name().startsWith("gqa")).findFirst()
                .orElseThrow();
        Tensor one = c.newOutput();
        Tensor three = c.newOutput();
        try (AttentionPlan a = ReferenceBackend.withThreads(1).plan(c.problem(), c.layout());
             AttentionPlan b = ReferenceBackend.withThreads(3).plan(c.problem(), c.layout())) {
            a.forward(c.q(), c.k(), c.v(), one);
            b.forward(c.q(), c.k(), c.v(), three);
        }
        assertArrayEquals(one.data(), three.data());
    }

    @Test
    void bothLayoutsGiveTheSameNumbers() {
        AttentionCase c = CaseGenerator.standard(SEED).get(4);
        Tensor outBhsd = c.newOutput();
        Tensor outBshd = Tensor.zeros(TensorLayout.BSHD, c.problem().batch(), c.problem().queryHeads(),
                c.problem().queryLength(), c.problem().valueDim());
        try (AttentionPlan plan = ReferenceBackend.withThreads(1).plan(c.problem(), c.layout())) {
            plan.forward(c.q(), c.k(), c.v(), outBhsd);
            plan.forward(c.q().toLayout(TensorLayout.BSHD), c.k().toLayout(TensorLayout.BSHD),
                    c.v().toLayout(TensorLayout.BSHD), outBshd);
        }
        assertArrayEquals(outBhsd.data(), outBshd.toLayout(TensorLayout.BHSD).data());
    }

    @Test
    void unsupportedPrecisionIsRefusedByName() {
        AttentionProblem p = AttentionProblem.builder().heads(1).length(16).headDim(8)
                .precision(dev.starling.api.Precision.BF16).build();
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                () -> new ReferenceBackend().plan(p, Patterns.parse("dense(block=16)").layout(16, 16, 1)));
        assertTrue(e.getMessage().contains("BF16"), e.getMessage());
    }
}
