/** The native CPU backend (AMX, AVX512-BF16 kernels through JNI): found through {@code ServiceLoader}; exports nothing. */
module dev.starling.backend.nativecpu {
    requires dev.starling.api;

    provides dev.starling.api.SparseAttention with dev.starling.backend.nativecpu.NativeBackend;
}
