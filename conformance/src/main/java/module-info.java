/**
 * The conformance kit: the float64 oracle, the numbered rules and the JUnit contract a backend's tests
 * extend ({@code SparseAttentionContract}).
 */
module dev.starling.conformance {
    requires transitive dev.starling.api;
    requires transitive org.junit.jupiter.api;

    exports dev.starling.conformance;
}
