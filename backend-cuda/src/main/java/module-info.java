/**
 * The CUDA backend (JCuda, the driver API): found through {@code ServiceLoader}. Its typed plan options
 * ({@code CudaBackend.KERNELS}, ...) are reached by name ({@code PlanOptions.of(backend, "kernels=mma")});
 * the package is exported only to Starling's benchmark tool.
 */
module dev.starling.backend.cuda {
    requires dev.starling.api;
    requires jcuda;

    exports dev.starling.backend.cuda to dev.starling.bench;

    provides dev.starling.api.SparseAttention with dev.starling.backend.cuda.CudaBackend;
}
