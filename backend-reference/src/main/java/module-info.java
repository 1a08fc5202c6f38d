/** The pure-Java reference backend: found through {@code ServiceLoader}; exports nothing. */
module dev.starling.backend.reference {
    requires dev.starling.api;

    provides dev.starling.api.SparseAttention with dev.starling.backend.reference.ReferenceBackend;
}
