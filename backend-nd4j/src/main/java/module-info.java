/**
 * The ND4J backend: found through {@code ServiceLoader}. Exports {@code Nd4jTensors} (its package), the
 * adapter that views an {@code INDArray} as a Starling tensor without a copy.
 */
module dev.starling.backend.nd4j {
    requires transitive dev.starling.api;
    requires transitive nd4j.api;
    requires org.bytedeco.javacpp;
    requires com.sun.jna;

    exports dev.starling.backend.nd4j;

    provides dev.starling.api.SparseAttention with dev.starling.backend.nd4j.Nd4jBackend;
}
