package dev.starling.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.Precision;
import dev.starling.conformance.CombinationGenerator.Combination;
import dev.starling.conformance.CombinationGenerator.Parameter;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Rule 22's generator: every pair of values of every two parameters occurs in some generated case,
 * counted on the cases themselves ({@link CombinationGenerator#observe}, read from the problem,
 * layout and tensors), for backends that declare everything and for backends that declare little.
 */
class CombinationGeneratorTest {

    static Stream<Capabilities> capabilities() {
        return Stream.of(
                Capabilities.full("cpu", EnumSet.of(Precision.FP32)),
                // A GPU-like backend: every precision, head dims up to 128.
                Capabilities.builder("gpu").precisions(EnumSet.allOf(Precision.class))
                        .features(Feature.CAUSAL, Feature.GROUPED_QUERY, Feature.LSE, Feature.KEY_LENGTHS, Feature.QUERY_LENGTHS).headDims(1, 128).build(),
                // Little declared: no optional feature, head dims 8..64.
                Capabilities.builder("cpu").precisions(EnumSet.of(Precision.FP32)).headDims(8, 64).build(),
                // Head dims above 64 only.
                Capabilities.builder("gpu").precisions(EnumSet.of(Precision.BF16))
                        .features(Feature.CAUSAL, Feature.GROUPED_QUERY, Feature.LSE, Feature.QUERY_LENGTHS).headDims(80, 512).build());
    }

    @ParameterizedTest
    @MethodSource("capabilities")
    void everyPairOfValuesOccursInABuiltCase(Capabilities caps) {
        Map<Parameter, List<String>> domains = CombinationGenerator.domains(caps);
        List<Combination> cases = CombinationGenerator.generate(caps, ConformanceRules.DEFAULT_SEED);
        Set<String> seen = new HashSet<>();
        for (Combination c : cases) {
            Map<Parameter, String> observed = CombinationGenerator.observe(c, caps);
            assertEquals(c.values(), observed, "case " + c.index() + " is not what its row asked for: " + c.testCase());
            for (Parameter a : observed.keySet()) {
                for (Parameter b : observed.keySet()) {
                    if (a.ordinal() < b.ordinal()) {
                        seen.add(a + "=" + observed.get(a) + " " + b + "=" + observed.get(b));
                    }
                }
            }
        }
        List<String> missing = new ArrayList<>();
        for (Parameter a : domains.keySet()) {
            for (Parameter b : domains.keySet()) {
                if (a.ordinal() >= b.ordinal()) {
                    continue;
                }
                for (String x : domains.get(a)) {
                    for (String y : domains.get(b)) {
                        if (!seen.contains(a + "=" + x + " " + b + "=" + y)) {
                            missing.add(a + "=" + x + " with " + b + "=" + y);
                        }
                    }
                }
            }
        }
        assertTrue(missing.isEmpty(), "pairs no case covers: " + missing);
    }

    @ParameterizedTest
    @MethodSource("capabilities")
    void casesStayWithinTheCapabilitiesAndTheBudget(Capabilities caps) {
        List<Combination> cases = CombinationGenerator.generate(caps, 11);
        assertTrue(cases.size() <= 120, cases.size() + " cases");
        for (Combination c : cases) {
            AttentionCase x = c.testCase();
            assertTrue(caps.unsupported(x.problem(), c.lse()).isEmpty(), x + ": " + caps.unsupported(x.problem(), c.lse()));
            long cost = (long) x.problem().batch() * x.problem().queryHeads() * x.problem().queryLength()
                    * x.problem().keyLength() * (x.problem().headDim() + x.problem().valueDim());
            assertTrue(cost <= 4 * CombinationGenerator.CASE_COST, x + " costs " + cost);
        }
    }

    @ParameterizedTest
    @MethodSource("capabilities")
    void theSameSeedGivesTheSameCases(Capabilities caps) {
        List<Combination> a = CombinationGenerator.generate(caps, 3);
        List<Combination> b = CombinationGenerator.generate(caps, 3);
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) {
            assertEquals(a.get(i).testCase().toString(), b.get(i).testCase().toString());
            assertEquals(a.get(i).testCase().q(), b.get(i).testCase().q());
        }
    }
}
