package dev.starling.conformance;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.SparseAttention;
import dev.starling.api.Starling;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import dev.starling.api.pattern.BigBirdPattern;
import dev.starling.api.pattern.BlockLayout;
import java.lang.reflect.Constructor;
import java.lang.reflect.Modifier;
import java.util.List;
import java.util.Locale;
import java.util.function.Supplier;

/**
 * Child-JVM entry point of rule 19: runs BigBird (block 64, window 3, global 2, random 3) over
 * {@value #TOKENS} tokens, batch 1, 8 heads, head dim 64, in whatever heap the JVM was given
 * ({@link ConformanceRules#MEMORY_RULE_HEAP}). The four tensors alone take 512 MB, so a backend
 * that allocates anything of size {@code Nq × Nk} (16 GB here) cannot pass. Exits 0 when the
 * output is right (every value row has feature 0 equal to 1, so every output row does too).
 *
 * <p>The child builds the backend as a {@link BackendSource} says: so that a contract whose
 * {@code createBackend()} returns a configured instance is checked on that instance.
 */
public final class LinearMemoryProbe {
    /** Sequence length of the probe. */
    public static final int TOKENS = 65_536;

    private LinearMemoryProbe() {
    }

    /**
     * How the child JVM of rule 19 builds the backend under test.
     *
     * @param kind what {@code className} names
     * @param className the class the child loads
     */
    public record BackendSource(Kind kind, String className) {

        /** What the class of a {@link BackendSource} is. */
        public enum Kind {
            /** A backend class with a public no-argument constructor (the SPI's). */
            BACKEND,
            /** A public class with a public no-argument constructor implementing {@code Supplier<SparseAttention>}. */
            SUPPLIER,
            /**
             * A {@link SparseAttentionContract} subclass with a no-argument constructor (any access): the child
             * creates it and calls its {@code createBackend()}, so it gets what the contract's tests get.
             */
            CONTRACT
        }

        /**
         * @param type a backend class with a public no-argument constructor
         * @return the source
         */
        public static BackendSource backendClass(Class<? extends SparseAttention> type) {
            return new BackendSource(Kind.BACKEND, type.getName());
        }

        /**
         * @param type a public class with a public no-argument constructor whose {@code get()} builds the backend
         * @return the source
         */
        public static BackendSource supplierClass(Class<? extends Supplier<? extends SparseAttention>> type) {
            return new BackendSource(Kind.SUPPLIER, type.getName());
        }

        /**
         * @param type a contract class with a no-argument constructor
         * @return the source
         */
        public static BackendSource contractClass(Class<? extends SparseAttentionContract> type) {
            return new BackendSource(Kind.CONTRACT, type.getName());
        }

        /**
         * Whether the child can build a backend this way: the class is concrete, and has the
         * constructor {@link Kind} asks for (public for backends and suppliers, any access for a
         * contract, which must not be a non-static inner class).
         *
         * @param type the class
         * @param kind how it would be used
         * @return whether it can
         */
        public static boolean usable(Class<?> type, Kind kind) {
            if (Modifier.isAbstract(type.getModifiers()) || type.isAnonymousClass() || type.isLocalClass()
                    || (type.isMemberClass() && !Modifier.isStatic(type.getModifiers()))) {
                return false;
            }
            try {
                Constructor<?> c = type.getDeclaredConstructor();
                return kind == Kind.CONTRACT || (Modifier.isPublic(c.getModifiers()) && Modifier.isPublic(type.getModifiers()));
            } catch (NoSuchMethodException e) {
                return false;
            }
        }

        /** @return the arguments that tell {@link LinearMemoryProbe#main} this source */
        List<String> arguments() {
            return List.of("--" + kind.name().toLowerCase(Locale.ROOT), className);
        }

        @Override
        public String toString() {
            return switch (kind) {
                case BACKEND -> "new " + className + "()";
                case SUPPLIER -> "new " + className + "().get()";
                case CONTRACT -> "new " + className + "().createBackend()";
            };
        }
    }

    /**
     * Builds the backend as the arguments say.
     *
     * @param args {@code --backend CLASS}, {@code --supplier CLASS}, {@code --contract CLASS}, or just a backend class
     * @return the backend
     * @throws Exception if the class cannot be loaded or built
     */
    static SparseAttention build(String[] args) throws Exception {
        if (args.length == 1) {
            return (SparseAttention) Class.forName(args[0]).getConstructor().newInstance();
        }
        Class<?> type = Class.forName(args[1]);
        Constructor<?> constructor = type.getDeclaredConstructor();
        constructor.setAccessible(true);
        Object made = constructor.newInstance();
        return switch (args[0]) {
            case "--backend" -> (SparseAttention) made;
            case "--supplier" -> (SparseAttention) ((Supplier<?>) made).get();
            case "--contract" -> ((SparseAttentionContract) made).createBackend();
            default -> throw new IllegalArgumentException("usage: LinearMemoryProbe [--backend|--supplier|--contract] CLASS");
        };
    }

    /**
     * @param args how to build the backend (see {@link BackendSource}): {@code --backend CLASS},
     *             {@code --supplier CLASS} or {@code --contract CLASS}; a lone class name is a backend class
     * @throws Exception on any failure, which makes the JVM exit non-zero
     */
    public static void main(String[] args) throws Exception {
        SparseAttention backend = build(args);
        int n = TOKENS;
        AttentionProblem p = AttentionProblem.builder().heads(8).length(n).headDim(64).build();
        BlockLayout layout = Starling.layout(p, BigBirdPattern.defaults());
        Tensor q = Tensor.zeros(TensorLayout.BHSD, 1, 8, n, 64);
        Tensor k = Tensor.zeros(TensorLayout.BHSD, 1, 8, n, 64);
        Tensor v = Tensor.zeros(TensorLayout.BHSD, 1, 8, n, 64);
        for (int i = 0; i < v.data().length; i += 64) {
            v.data()[i] = 1f;
            q.data()[i] = (i % 7) * 0.1f;
            k.data()[i] = (i % 5) * 0.1f;
        }
        Tensor out = Tensor.zeros(TensorLayout.BHSD, 1, 8, n, 64);
        long t0 = System.nanoTime();
        try (AttentionPlan plan = backend.plan(p, layout)) {
            plan.forward(q, k, v, out);
        }
        for (int i = 0; i < out.data().length; i += 64) {
            if (Math.abs(out.data()[i] - 1f) > 1e-3f) {
                System.out.println("wrong output at flat index " + i + ": " + out.data()[i] + " (expected 1)");
                System.exit(1);
            }
        }
        System.out.printf("ok: backend '%s', %d tokens in %.1f s, max heap %d MB%n", backend.name(), n,
                (System.nanoTime() - t0) / 1e9, Runtime.getRuntime().maxMemory() >> 20);
    }
}
