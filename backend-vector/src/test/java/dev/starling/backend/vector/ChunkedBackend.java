package dev.starling.backend.vector;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.SparseAttention;
import dev.starling.api.pattern.BlockLayout;

/** The vector backend with a given number of backward chunks per key/value head (tests only). */
final class ChunkedBackend implements SparseAttention {
    private final VectorBackend backend;
    private final int chunks;

    ChunkedBackend(VectorBackend backend, int chunks) {
        this.backend = backend;
        this.chunks = chunks;
    }

    @Override
    public String name() {
        return backend.name();
    }

    @Override
    public int priority() {
        return backend.priority();
    }

    @Override
    public Availability availability() {
        return backend.availability();
    }

    @Override
    public Capabilities capabilities() {
        return backend.capabilities();
    }

    @Override
    public AttentionPlan plan(AttentionProblem problem, BlockLayout layout) {
        return new VectorPlan(this, problem, layout, backend.poolSize(dev.starling.api.PlanOptions.none()), chunks);
    }
}
