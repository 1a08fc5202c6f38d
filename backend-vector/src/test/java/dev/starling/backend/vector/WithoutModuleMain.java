package dev.starling.backend.vector;

import dev.starling.api.AttentionProblem;
import dev.starling.api.SparseAttention;
import dev.starling.api.pattern.Patterns;
import java.util.ServiceLoader;

/** Run by {@link VectorAvailabilityTest} in a JVM without {@code jdk.incubator.vector}. */
public final class WithoutModuleMain {
    private WithoutModuleMain() {
    }

    public static void main(String[] args) {
        if (ModuleLayer.boot().findModule(VectorBackend.MODULE).isPresent()) {
            System.out.println("the module is present; this check needs a JVM without it");
            System.exit(3);
        }
        for (SparseAttention b : ServiceLoader.load(SparseAttention.class)) {
            if (b instanceof VectorBackend) {
                System.out.println(b.name() + " " + b.priority() + " " + b.availability());
                System.out.println(b.capabilities().summary());
                AttentionProblem p = AttentionProblem.builder().heads(1).length(64).headDim(8).build();
                try {
                    b.plan(p, Patterns.parse("dense(block=16)").layout(64, 64, 1, false));
                    System.out.println("plan made");
                } catch (IllegalStateException e) {
                    System.out.println("plan refused: " + e.getMessage());
                }
            }
        }
    }
}
