package com.example;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.SparseAttention;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.backend.reference.ReferenceBackend;

/** A third party's backend: here it delegates to the reference backend under its own name. */
public final class MyBackend implements SparseAttention {
    private final ReferenceBackend inner = new ReferenceBackend();

    @Override public String name() { return "mine"; }
    @Override public int priority() { return 1; }
    @Override public Availability availability() { return inner.availability(); }
    @Override public Capabilities capabilities() { return inner.capabilities(); }
    @Override public AttentionPlan plan(AttentionProblem problem, BlockLayout layout) { return inner.plan(problem, layout); }
}
