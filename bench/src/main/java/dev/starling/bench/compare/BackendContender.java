package dev.starling.bench.compare;

import dev.starling.api.Feature;
import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.Starling;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.PatternSpec;
import java.util.Set;

/** A Starling backend on the sparse pattern. */
final class BackendContender implements Contender {
    private final SparseAttention backend;
    private final PatternSpec pattern;
    private AttentionPlan plan;
    private Tensor q;
    private Tensor k;
    private Tensor v;
    private float[] lse;

    BackendContender(SparseAttention backend, PatternSpec pattern) {
        this.backend = backend;
        this.pattern = pattern;
    }

    @Override
    public String name() {
        return backend.name();
    }

    @Override
    public boolean dense() {
        return false;
    }

    @Override
    public String unavailableReason() {
        return backend.availability().isAvailable() ? null : backend.availability().reason();
    }

    /** @return the precisions the backend declares in its {@link dev.starling.api.Capabilities} */
    @Override
    public Set<Precision> precisions() {
        return backend.capabilities().precisions();
    }

    @Override
    public void prepare(AttentionProblem problem, Tensor q, Tensor k, Tensor v) {
        close();
        this.q = q;
        this.k = k;
        this.v = v;
        plan = backend.plan(problem, Starling.layout(problem, pattern));
        lse = null;
    }

    @Override
    public void run(Tensor out) {
        plan.forward(q, k, v, out);
    }

    @Override
    public String noBackward() {
        return backend.capabilities().has(Feature.BACKWARD) ? null : "backend '" + backend.name()
                + "' does not declare feature BACKWARD";
    }

    @Override
    public void runBackward(Tensor out, Tensor dOut, Tensor dq, Tensor dk, Tensor dv) {
        if (lse == null) {
            AttentionProblem p = plan.problem();
            lse = new float[p.batch() * p.queryHeads() * p.queryLength()];
        }
        plan.forward(q, k, v, out, lse);
        plan.backward(q, k, v, out, lse, dOut, dq, dk, dv);
    }

    @Override
    public void close() {
        if (plan != null) {
            plan.close();
            plan = null;
        }
    }
}
