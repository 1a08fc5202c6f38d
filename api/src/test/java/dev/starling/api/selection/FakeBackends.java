package dev.starling.api.selection;

import dev.starling.api.AttentionPlan;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.Precision;
import dev.starling.api.SparseAttention;
import dev.starling.api.pattern.BlockLayout;
import java.util.EnumSet;

/** Fake providers for selection tests; public so ServiceLoader can instantiate them. */
public final class FakeBackends {

    private FakeBackends() {
    }

    /** A configurable fake. */
    public static class Fake implements SparseAttention {
        private final String name;
        private final int priority;
        private final Availability availability;
        private final Capabilities capabilities;

        Fake(String name, int priority, Availability availability, Capabilities capabilities) {
            this.name = name;
            this.priority = priority;
            this.availability = availability;
            this.capabilities = capabilities;
        }

        @Override
        public String name() {
            return name;
        }

        @Override
        public int priority() {
            return priority;
        }

        @Override
        public Availability availability() {
            return availability;
        }

        @Override
        public Capabilities capabilities() {
            return capabilities;
        }

        @Override
        public AttentionPlan plan(AttentionProblem problem, BlockLayout layout) {
            throw new UnsupportedOperationException("fake");
        }
    }

    static Capabilities fp32() {
        return Capabilities.full("fake", EnumSet.of(Precision.FP32));
    }

    static Capabilities noCausal() {
        return Capabilities.builder("fake").precisions(EnumSet.of(Precision.FP32))
                .features(Feature.GROUPED_QUERY, Feature.LSE, Feature.KEY_LENGTHS, Feature.QUERY_LENGTHS).headDims(1, 256).build();
    }

    /** Available, priority 5. */
    public static class Good extends Fake {
        public Good() {
            super("good", 5, Availability.available(), fp32());
        }
    }

    /** Unavailable with a reason, priority 100. */
    public static class Missing extends Fake {
        public Missing() {
            super("gpu", 100, Availability.unavailable("no libcuda.so.1"), fp32());
        }
    }

    /** Constructor throws: ServiceLoader reports a ServiceConfigurationError. */
    public static class ThrowingConstructor extends Fake {
        public ThrowingConstructor() {
            super("never", 1, Availability.available(), fp32());
            throw new IllegalStateException("boom in constructor");
        }
    }

    /** Available, priority 7: a second backend named "good", to be refused as a duplicate. */
    public static class AlsoGood extends Fake {
        public AlsoGood() {
            super("good", 7, Availability.available(), fp32());
        }
    }

    /** name() returns null despite the contract. */
    public static class NullName extends Fake {
        public NullName() {
            super(null, 3, Availability.available(), fp32());
        }
    }

    /** name() returns blanks despite the contract. */
    public static class BlankName extends Fake {
        public BlankName() {
            super("  ", 3, Availability.available(), fp32());
        }
    }

    /** capabilities() returns null despite the contract. */
    public static class NullCapabilities extends Fake {
        public NullCapabilities() {
            super("nocaps", 40, Availability.available(), null);
        }
    }

    /** availability() returns null despite the contract. */
    public static class NullAvailability extends Fake {
        public NullAvailability() {
            super("noavail", 41, null, fp32());
        }
    }

    /** capabilities() throws despite the contract. */
    public static class ThrowingCapabilities extends Fake {
        public ThrowingCapabilities() {
            super("badcaps", 42, Availability.available(), fp32());
        }

        @Override
        public Capabilities capabilities() {
            throw new IllegalStateException("no capabilities today");
        }
    }

    /** Its static initialiser throws: instantiating it raises ExceptionInInitializerError. */
    public static class FailingStaticInit extends Fake {
        static final int NEVER = fail();

        public FailingStaticInit() {
            super("static", 1, Availability.available(), fp32());
        }

        private static int fail() {
            throw new IllegalStateException("boom in static initializer");
        }
    }

    /** A superclass that tests hide from the class path, as when a backend jar lacks a dependency. */
    public static class HiddenBase extends Fake {
        public HiddenBase() {
            super("hidden", 60, Availability.available(), fp32());
        }
    }

    /** Extends {@link HiddenBase}: loading it fails with NoClassDefFoundError where that is hidden. */
    public static class Orphan extends HiddenBase {
        public Orphan() {
        }
    }

    /** availability() throws despite the contract. */
    public static class ThrowingAvailability extends Fake {
        public ThrowingAvailability() {
            super("flaky", 50, Availability.available(), fp32());
        }

        @Override
        public Availability availability() {
            throw new UnsatisfiedLinkError("no native library");
        }
    }
}
