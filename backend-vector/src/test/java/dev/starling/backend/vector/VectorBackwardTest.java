package dev.starling.backend.vector;

import dev.starling.api.Feature;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.AttentionCase;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The vector backward pass against the float64 gradient oracle ({@code conformance/GradientOracle}):
 * every pattern, tails, causal with {@code Nq != Nk}, GQA and MQA, {@code Dv != D}, odd head dims,
 * key and query lengths, both tensor layouts, key blocks larger than a key tile; non-finite inputs
 * element by element; the same bits with any number of threads and from several threads at once.
 */
class VectorBackwardTest {

    private static AttentionCase normal(String name, long seed, AttentionProblem p, String pattern, TensorLayout layout) {
        return AttentionCase.random(name, seed, p, Patterns.parse(pattern), layout, AttentionCase.Values.NORMAL);
    }

    static Stream<Arguments> cases() {
        AttentionProblem.Builder base = AttentionProblem.builder().heads(4).length(200).headDim(16);
        return Stream.of(
                Arguments.of("plain bigbird", base.build(), "bigbird(block=16, window=3, global=2, random=2)",
                        TensorLayout.BHSD),
                Arguments.of("bigbird block 64, D 64", AttentionProblem.builder().heads(2).length(700).headDim(64).build(),
                        "bigbird(block=64, window=3, global=2, random=3)", TensorLayout.BHSD),
                Arguments.of("tails, Nq < Nk, Dv != D, GQA, BSHD", AttentionProblem.builder().batch(2).heads(4).kvHeads(2)
                        .queryLength(77).keyLength(101).headDim(12).valueDim(7).build(),
                        "bigbird(block=16, window=3, global=1, random=2)", TensorLayout.BSHD),
                Arguments.of("causal, MQA, lengths, Nq < Nk", AttentionProblem.builder().batch(2).heads(3).kvHeads(1)
                        .queryLength(90).keyLength(120).headDim(9).causal(true).keyLengths(120, 64).queryLengths(70, 90)
                        .build(), "bigbird(block=16, window=3, global=2, random=2)", TensorLayout.BHSD),
                Arguments.of("causal, Nq > Nk, odd dims", AttentionProblem.builder().batch(1).heads(2).queryLength(150)
                        .keyLength(97).headDim(53).valueDim(97).causal(true).build(),
                        "bigbird(block=32, window=3, global=1, random=1)", TensorLayout.BSHD),
                Arguments.of("causal pattern, block 100 (two key tiles)", AttentionProblem.builder().heads(2).length(333)
                        .headDim(20).valueDim(36).build(), "causal(window(block=100, blocks=3))", TensorLayout.BHSD),
                Arguments.of("strided", base.build(), "strided(block=16, stride=3)", TensorLayout.BSHD),
                Arguments.of("longformer", base.build(), "longformer(block=16, window=3, global=[0, -1])",
                        TensorLayout.BHSD),
                Arguments.of("fixed", base.build(), "fixed(block=16, local=3, global=1)", TensorLayout.BHSD),
                Arguments.of("dense, scale, block 8", base.scale(0.3f).build(), "dense(block=8)", TensorLayout.BHSD),
                Arguments.of("dense 128, D 128, GQA 8:2", AttentionProblem.builder().heads(8).kvHeads(2).length(256)
                        .headDim(128).build(), "dense(block=128)", TensorLayout.BSHD),
                Arguments.of("one key, one row", AttentionProblem.builder().heads(1).queryLength(1).keyLength(1).headDim(3)
                        .build(), "dense(block=64)", TensorLayout.BHSD),
                Arguments.of("empty batch entry", AttentionProblem.builder().batch(2).heads(2).length(80).headDim(16)
                        .keyLengths(80, 0).queryLengths(50, 80).build(), "window(block=16, blocks=3)", TensorLayout.BSHD));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void matchesTheGradientOracle(String name, AttentionProblem p, String pattern, TensorLayout layout) {
        GradientCheck check = new GradientCheck(normal(name, name.hashCode(), p, pattern, layout), 5, layout);
        GradientCheck.Outcome one = check.run(VectorBackend.withThreads(1));
        GradientCheck.Outcome three = check.run(VectorBackend.withThreads(3));
        System.out.printf("%-45s dq %s%n%-45s dk %s%n%-45s dv %s%n", name, one.eq(), "", one.ek(), "", one.ev());
        GradientCheck.assertBitsEqual(one.dq().data(), three.dq().data(), name + ": dq, 1 vs 3 threads");
        GradientCheck.assertBitsEqual(one.dk().data(), three.dk().data(), name + ": dk, 1 vs 3 threads");
        GradientCheck.assertBitsEqual(one.dv().data(), three.dv().data(), name + ": dv, 1 vs 3 threads");
    }

    @Test
    void manyChunksGiveTheSameAnswerWithinTolerance() {
        AttentionProblem p = AttentionProblem.builder().heads(2).kvHeads(1).length(400).headDim(24).causal(true).build();
        AttentionCase c = normal("chunks", 3, p, "bigbird(block=32, window=3, global=2, random=2)", TensorLayout.BHSD);
        GradientCheck check = new GradientCheck(c, 4, TensorLayout.BHSD);
        for (int chunks : new int[] {1, 2, 5, 13}) {
            VectorBackend backend = VectorBackend.withThreads(2);
            check.run(new ChunkedBackend(backend, chunks));
        }
    }

    static Stream<Arguments> nonFinite() {
        Stream.Builder<Arguments> s = Stream.builder();
        for (String input : new String[] {"q", "k", "v", "dOut"}) {
            for (float value : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
                for (int block : new int[] {16, 64}) {
                    s.add(Arguments.of(input, value, block));
                }
            }
        }
        return s.build();
    }

    @ParameterizedTest(name = "{1} in {0}, block {2}")
    @MethodSource("nonFinite")
    void nonFiniteInputsLandWhereTheOracleSays(String input, float value, int block) {
        AttentionProblem p = AttentionProblem.builder().batch(2).heads(4).kvHeads(2).queryLength(3 * block + 5)
                .keyLength(3 * block + 2).headDim(20).valueDim(33).causal(true).keyLengths(3 * block + 2, 2 * block + 1)
                .build();
        AttentionCase c = normal("non-finite", 99, p, "bigbird(block=" + block + ", window=3, global=1, random=1, seed=3)",
                TensorLayout.BHSD);
        GradientCheck check = new GradientCheck(c, 8, TensorLayout.BHSD);
        Tensor target = switch (input) {
            case "q" -> c.q();
            case "k" -> c.k();
            case "v" -> c.v();
            default -> check.dOut;
        };
        Random rnd = new Random(block * 31L + input.hashCode());
        for (int x = 0; x < 3; x++) {
            target.data()[rnd.nextInt(target.data().length)] = value;
        }
        // The first key: read by every row under causal global blocks.
        target.data()[target.offset(0, 0, 0)] = value;
        GradientCheck.Outcome one = check.run(VectorBackend.withThreads(1));
        GradientCheck.Outcome two = check.run(VectorBackend.withThreads(2));
        GradientCheck.assertBitsEqual(one.dk().data(), two.dk().data(), "dk, 1 vs 2 threads");
    }

    @Test
    void sameBitsFromSeveralThreadsAtOnce() throws Exception {
        AttentionProblem p = AttentionProblem.builder().batch(2).heads(4).kvHeads(2).length(300).headDim(32).causal(true)
                .build();
        AttentionCase c = normal("concurrent", 21, p, "bigbird(block=32, window=3, global=2, random=2)", TensorLayout.BHSD);
        GradientCheck check = new GradientCheck(c, 22, TensorLayout.BHSD);
        Tensor out = c.newOutput();
        float[] lse = c.newLse();
        ExecutorService callers = Executors.newFixedThreadPool(4);
        try (AttentionPlan plan = VectorBackend.withThreads(2).plan(p, c.layout())) {
            plan.forward(c.q(), c.k(), c.v(), out, lse);
            Tensor[] want = check.newGradients();
            plan.backward(c.q(), c.k(), c.v(), out, lse, check.dOut, want[0], want[1], want[2]);
            List<Future<Tensor[]>> calls = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                calls.add(callers.submit(() -> {
                    Tensor[] g = check.newGradients();
                    plan.backward(c.q(), c.k(), c.v(), out, lse, check.dOut, g[0], g[1], g[2]);
                    return g;
                }));
            }
            for (Future<Tensor[]> f : calls) {
                Tensor[] g = f.get();
                for (int x = 0; x < 3; x++) {
                    GradientCheck.assertBitsEqual(want[x].data(), g[x].data(), "concurrent call");
                }
            }
        } finally {
            callers.shutdown();
        }
    }

    @Test
    void linearMemoryAtLongSequences() {
        // Surefire runs with -Xmx1g: one N×N float buffer here would take 17 GB. MQA with one batch entry
        // gives the most chunks (16) and so the most dQ slots.
        int n = 65536;
        AttentionProblem p = AttentionProblem.builder().heads(2).kvHeads(1).length(n).headDim(32).build();
        AttentionCase c = normal("long", 31, p, "bigbird(block=64, window=3, global=2, random=3)", TensorLayout.BHSD);
        Tensor out = c.newOutput();
        float[] lse = c.newLse();
        Tensor g = out.copy();
        java.util.Arrays.fill(g.data(), 1f);
        Tensor dq = Tensor.zeros(TensorLayout.BHSD, 1, 2, n, 32);
        Tensor dk = Tensor.zeros(TensorLayout.BHSD, 1, 1, n, 32);
        Tensor dv = Tensor.zeros(TensorLayout.BHSD, 1, 1, n, 32);
        try (AttentionPlan plan = VectorBackend.withThreads(2).plan(p, c.layout())) {
            plan.forward(c.q(), c.k(), c.v(), out, lse);
            plan.backward(c.q(), c.k(), c.v(), out, lse, g, dq, dk, dv);
        }
        for (float[] a : new float[][] {dq.data(), dk.data(), dv.data()}) {
            for (float x : a) {
                assertTrue(Float.isFinite(x));
            }
        }
    }

    @Test
    void declaresBackward() {
        assertTrue(new VectorBackend().capabilities().has(Feature.BACKWARD));
    }

    @Test
    void chunksDependOnTheProblemOnly() {
        AttentionProblem one = AttentionProblem.builder().heads(8).length(1024).headDim(64).build();
        AttentionProblem mqa = AttentionProblem.builder().heads(8).kvHeads(1).length(1024).headDim(64).build();
        AttentionProblem batch = AttentionProblem.builder().batch(4).heads(8).length(1024).headDim(64).build();
        assertEquals(2, VectorBackward.chunks(one, 16));
        assertEquals(16, VectorBackward.chunks(mqa, 16));
        assertEquals(3, VectorBackward.chunks(mqa, 3));
        assertEquals(1, VectorBackward.chunks(batch, 16));
    }
}
