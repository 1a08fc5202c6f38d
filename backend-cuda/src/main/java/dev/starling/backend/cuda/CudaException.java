package dev.starling.backend.cuda;

import jcuda.driver.CUresult;

/**
 * A CUDA driver call failed. The message names the call and the CUDA error
 * ({@code CUDA_ERROR_OUT_OF_MEMORY}, ...), so a native failure surfaces as a Java exception with
 * the native message and never crashes the JVM.
 */
public final class CudaException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final int code;

    /**
     * @param call the driver function and what it was doing
     * @param code the {@code CUresult} value
     */
    public CudaException(String call, int code) {
        super(call + " failed: " + errorName(code) + " (" + code + ")");
        this.code = code;
    }

    /** @return the {@code CUresult} value */
    public int code() {
        return code;
    }

    /**
     * @param code a {@code CUresult} value
     * @return its CUDA name, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}
     */
    public static String errorName(int code) {
        return CUresult.stringFor(code);
    }

    /**
     * Throws unless {@code code} is {@code CUDA_SUCCESS}.
     *
     * @param code the result of a driver call
     * @param call what was called, for the message
     */
    public static void check(int code, String call) {
        if (code != CUresult.CUDA_SUCCESS) {
            throw new CudaException(call, code);
        }
    }
}
