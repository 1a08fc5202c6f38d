/**
 * Starling's API: block-sparse attention on the JVM.
 *
 * <p>For users: {@code dev.starling.api} (problems, tensors, plans, options, features, the
 * {@link dev.starling.api.Starling} entry point) and {@code dev.starling.api.pattern} (patterns and
 * block layouts). For backend authors, a documented SPI: {@code dev.starling.api.plan} (the shared
 * execution plan: token mask, work units, online softmax, the base plan). Provider plumbing
 * ({@code spi}, {@code selection}), file formats ({@code npy}) and the tools' file policy ({@code io})
 * are exported only to Starling's own modules; on the class path everything stays visible as before.
 */
module dev.starling.api {
    exports dev.starling.api;
    exports dev.starling.api.pattern;
    exports dev.starling.api.plan;
    exports dev.starling.api.selection;
    exports dev.starling.api.spi to dev.starling.conformance, dev.starling.bench;
    exports dev.starling.api.npy to dev.starling.conformance, dev.starling.bench;
    exports dev.starling.api.io to dev.starling.bench;

    // Optional, compile time only: the api logs through System.Logger; its tests capture records with
    // java.util.logging, and test sources compile inside this module.
    requires static java.logging;

    uses dev.starling.api.SparseAttention;
    uses dev.starling.api.pattern.PatternProvider;
}
