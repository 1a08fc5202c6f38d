package dev.starling.conformance;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.SparseAttention;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.Patterns;
import dev.starling.conformance.ConformanceRules.RuleFailure;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Rule 42: calls interrupted mid-flight. A call runs on a thread of its own and is interrupted at a
 * fraction of its measured time; whether it then throws or completes, once it has returned its
 * outputs are filled with a sentinel and watched for a while: no thread of the call may write them
 * again. A call that completes must give the uninterrupted call's bits, and so must a later call
 * into the same buffers. Then a call is left running while another thread closes the plan: once
 * {@code close()} returned, nothing writes the outputs either. Forward always; backward too when the
 * backend declares {@code backward}.
 */
final class InterruptedCalls {
    /** The sentinel the outputs are filled with once a call returned (a quiet NaN no kernel produces). */
    static final int SENTINEL = 0x7fc5a5a5;
    /** A call is calibrated to take at least this long, so an interruption lands mid-flight. */
    private static final long MIN_CALL_NANOS = TimeUnit.MILLISECONDS.toNanos(60);
    private static final int MAX_LENGTH = 16_384;
    /** Where in the call the interruption lands: fractions of its measured time. */
    private static final double[] WHEN = {0.0, 0.1, 0.5};

    private InterruptedCalls() {
    }

    /** One entry point on fixed inputs, writing into {@link #outputs()}. */
    private interface Call {
        void run(AttentionPlan plan);

        /** @return the arrays the call writes */
        float[][] outputs();
    }

    static double check(SparseAttention backend, long seed) {
        Capabilities caps = backend.capabilities();
        boolean lse = caps.has(Feature.LSE);
        int n = 512;
        while (true) {
            AttentionProblem p = AttentionProblem.builder().heads(4).length(n).headDim(64).build();
            BlockLayout layout = Patterns.parse("dense(block=64)").layout(n, n, p.queryHeads());
            Random rnd = new Random(seed ^ n);
            Tensor q = random(rnd, p.batch(), p.queryHeads(), n, p.headDim());
            Tensor k = random(rnd, p.batch(), p.kvHeads(), n, p.headDim());
            Tensor v = random(rnd, p.batch(), p.kvHeads(), n, p.valueDim());
            Tensor out = Tensor.zeros(TensorLayout.BHSD, p.batch(), p.queryHeads(), n, p.valueDim());
            float[] l = lse || caps.has(Feature.BACKWARD) ? new float[p.lseSize()] : null;
            String label = "dense attention over " + n + " tokens, 4 heads, head dim 64";
            Call forward = new Call() {
                @Override
                public void run(AttentionPlan plan) {
                    plan.forward(q, k, v, out, l);
                }

                @Override
                public float[][] outputs() {
                    return l == null ? new float[][] {out.data()} : new float[][] {out.data(), l};
                }
            };
            long nanos;
            float[][] expected;
            try (AttentionPlan plan = open(backend, p, layout, label)) {
                nanos = timed(plan, forward, label + ", forward");
                expected = copy(forward.outputs());
            }
            if (nanos < MIN_CALL_NANOS && n < MAX_LENGTH) {
                n *= 2;
                continue;
            }
            interrupted(backend, p, layout, forward, expected, nanos, label + ", forward");
            if (caps.has(Feature.BACKWARD)) {
                Tensor outDone = Tensor.zeros(TensorLayout.BHSD, p.batch(), p.queryHeads(), n, p.valueDim());
                System.arraycopy(expected[0], 0, outDone.data(), 0, expected[0].length);
                float[] lseDone = expected[expected.length - 1].clone();
                Tensor dOut = random(rnd, p.batch(), p.queryHeads(), n, p.valueDim());
                Tensor dq = Tensor.zeros(TensorLayout.BHSD, p.batch(), p.queryHeads(), n, p.headDim());
                Tensor dk = Tensor.zeros(TensorLayout.BHSD, p.batch(), p.kvHeads(), n, p.headDim());
                Tensor dv = Tensor.zeros(TensorLayout.BHSD, p.batch(), p.kvHeads(), n, p.valueDim());
                Call backwardCall = new Call() {
                    @Override
                    public void run(AttentionPlan plan) {
                        plan.backward(q, k, v, outDone, lseDone, dOut, dq, dk, dv);
                    }

                    @Override
                    public float[][] outputs() {
                        return new float[][] {dq.data(), dk.data(), dv.data()};
                    }
                };
                float[][] gradients;
                long backwardNanos;
                try (AttentionPlan plan = open(backend, p, layout, label)) {
                    backwardNanos = timed(plan, backwardCall, label + ", backward");
                    gradients = copy(backwardCall.outputs());
                }
                interrupted(backend, p, layout, backwardCall, gradients, backwardNanos, label + ", backward");
            }
            return Double.NaN;
        }
    }

    /** The interrupted calls and the close during a call, on one plan each. */
    private static void interrupted(SparseAttention backend, AttentionProblem p, BlockLayout layout, Call call,
                                    float[][] expected, long nanos, String label) {
        long watchMillis = Math.min(1_000, Math.max(100, TimeUnit.NANOSECONDS.toMillis(nanos)));
        try (AttentionPlan plan = open(backend, p, layout, label)) {
            for (double when : WHEN) {
                String what = label + " interrupted " + (when == 0 ? "as it starts" : "at " + (int) (when * 100)
                        + "% of its " + TimeUnit.NANOSECONDS.toMillis(nanos) + " ms");
                AtomicReference<RuntimeException> thrown = new AtomicReference<>();
                AtomicReference<float[][]> atReturn = new AtomicReference<>();
                Thread caller = new Thread(() -> {
                    if (when == 0) {
                        Thread.currentThread().interrupt();
                    }
                    try {
                        call.run(plan);
                    } catch (RuntimeException e) {
                        thrown.set(e);
                    }
                    atReturn.set(copy(call.outputs()));
                    fill(call.outputs());
                }, "starling-conformance-interrupted-caller");
                caller.setDaemon(true);
                caller.start();
                if (when > 0) {
                    sleepNanos((long) (when * nanos));
                    caller.interrupt();
                }
                join(caller, nanos, what);
                watch(call, watchMillis, what + (thrown.get() == null ? " (it completed)" : " (it threw "
                        + thrown.get() + ")"));
                if (thrown.get() == null) {
                    requireSame(expected, atReturn.get(), what + ": it completed, so it must give the uninterrupted call's bits");
                }
            }
            // A later call into the same buffers must come out whole: no write of an earlier call lands in it.
            fill(call.outputs());
            try {
                call.run(plan);
            } catch (RuntimeException e) {
                throw new RuleFailure(label + ": a call after the interrupted ones threw " + e, Double.NaN);
            }
            sleepNanos(TimeUnit.MILLISECONDS.toNanos(watchMillis));
            requireSame(expected, call.outputs(), label + ": a call after the interrupted ones, read " + watchMillis
                    + " ms after it returned");
        }
        AttentionPlan plan = open(backend, p, layout, label);
        Thread caller = new Thread(() -> {
            try {
                call.run(plan);
            } catch (RuntimeException e) {
                // a call cut short by close() may throw; what matters is what it writes after close() returned
            }
        }, "starling-conformance-closed-caller");
        caller.setDaemon(true);
        caller.start();
        sleepNanos(nanos / 3);
        plan.close();
        fill(call.outputs());
        watch(call, watchMillis, label + ": close() called a third of the way into a call, then the outputs filled "
                + "with a sentinel once close() returned");
        join(caller, nanos, label + " during close()");
    }

    private static AttentionPlan open(SparseAttention backend, AttentionProblem p, BlockLayout layout, String label) {
        try {
            return backend.plan(p, layout);
        } catch (RuntimeException e) {
            throw new RuleFailure(label + ": plan threw " + e, Double.NaN);
        }
    }

    /** Runs {@code call} twice (the first warms up), returning the second call's time. */
    private static long timed(AttentionPlan plan, Call call, String label) {
        try {
            call.run(plan);
            long t0 = System.nanoTime();
            call.run(plan);
            return Math.max(1, System.nanoTime() - t0);
        } catch (RuntimeException e) {
            throw new RuleFailure(label + ": an uninterrupted call threw " + e, Double.NaN);
        }
    }

    private static void join(Thread caller, long nanos, String what) {
        long limit = TimeUnit.NANOSECONDS.toMillis(nanos) * 20 + 30_000;
        try {
            caller.join(limit);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RuleFailure(what + ": the kit was interrupted", Double.NaN);
        }
        if (caller.isAlive()) {
            throw new RuleFailure(what + ": the call had not returned after " + limit + " ms", Double.NaN);
        }
    }

    /** Fails when any output element leaves the sentinel within {@code millis}. */
    private static void watch(Call call, long millis, String what) {
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        float[][] outputs = call.outputs();
        do {
            for (int a = 0; a < outputs.length; a++) {
                float[] x = outputs[a];
                for (int i = 0; i < x.length; i++) {
                    if (Float.floatToRawIntBits(x[i]) != SENTINEL) {
                        throw new RuleFailure(what + ": output " + a + " element " + i + " was written (" + x[i]
                                + ") after the call returned; no thread of a call may write its outputs once it "
                                + "returned or threw, nor once close() returned", Double.NaN);
                    }
                }
            }
            sleepNanos(TimeUnit.MILLISECONDS.toNanos(10));
        } while (System.nanoTime() < end);
    }

    private static void requireSame(float[][] expected, float[][] got, String what) {
        for (int a = 0; a < expected.length; a++) {
            int differ = 0;
            int first = -1;
            for (int i = 0; i < expected[a].length; i++) {
                if (Float.floatToRawIntBits(expected[a][i]) != Float.floatToRawIntBits(got[a][i])) {
                    if (differ++ == 0) {
                        first = i;
                    }
                }
            }
            if (differ > 0) {
                throw new RuleFailure(what + ": output " + a + " differs at element " + first + " (" + got[a][first]
                        + " where the uninterrupted call gave " + expected[a][first] + "; " + differ + " of "
                        + expected[a].length + " elements differ)", Double.NaN);
            }
        }
    }

    private static void fill(float[][] outputs) {
        for (float[] x : outputs) {
            Arrays.fill(x, Float.intBitsToFloat(SENTINEL));
        }
    }

    private static float[][] copy(float[][] arrays) {
        float[][] c = new float[arrays.length][];
        for (int a = 0; a < arrays.length; a++) {
            c[a] = arrays[a].clone();
        }
        return c;
    }

    private static Tensor random(Random rnd, int batch, int heads, int n, int dim) {
        Tensor t = Tensor.zeros(TensorLayout.BHSD, batch, heads, n, dim);
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) rnd.nextGaussian();
        }
        return t;
    }

    private static void sleepNanos(long nanos) {
        try {
            TimeUnit.NANOSECONDS.sleep(nanos);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RuleFailure("the kit was interrupted", Double.NaN);
        }
    }
}
