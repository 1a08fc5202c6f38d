package dev.starling.backend.cuda;

import dev.starling.api.TensorLayout;
import jcuda.driver.CUdeviceptr;

/**
 * A {@code [B, heads, length, dim]} tensor in device memory as the kernels see it (float32, or
 * bf16/fp16 for 16-bit inputs): its address and its element strides {@code (batch, head, row)};
 * features are contiguous.
 *
 * @param address device address of element {@code (0, 0, 0, 0)}
 * @param batchStride elements between batch entries
 * @param headStride elements between heads
 * @param rowStride elements between rows
 */
record DeviceTensor(long address, long batchStride, long headStride, long rowStride) {

    /**
     * A tensor in {@code layout}: {@code BHSD} has strides {@code (H·N·D, N·D, D)}, {@code BSHD}
     * has {@code (N·H·D, D, H·D)}.
     *
     * @param address device address
     * @param layout memory order
     * @param heads {@code H}
     * @param length {@code N}
     * @param dim {@code D}
     * @return the tensor
     */
    static DeviceTensor of(long address, TensorLayout layout, int heads, int length, int dim) {
        long n = length;
        long h = heads;
        long d = dim;
        return layout == TensorLayout.BHSD ? new DeviceTensor(address, h * n * d, n * d, d)
                : new DeviceTensor(address, n * h * d, d, h * d);
    }

    /**
     * @param otherAddress a device address
     * @return a tensor with these strides at {@code otherAddress}
     */
    DeviceTensor at(long otherAddress) {
        return new DeviceTensor(otherAddress, batchStride, headStride, rowStride);
    }

    /**
     * The address a kernel receives for a JCuda device pointer (its native pointer plus its byte
     * offset, as JCuda passes it); 0 for {@code null}.
     *
     * @param pointer a device pointer, or {@code null}. Not modified.
     * @return the address
     */
    static long address(CUdeviceptr pointer) {
        return pointer == null ? 0L : new Address(pointer).value();
    }

    /** Reads the protected native pointer and byte offset of a copy of a {@link CUdeviceptr}. */
    private static final class Address extends CUdeviceptr {
        Address(CUdeviceptr pointer) {
            super(pointer);
        }

        long value() {
            return getNativePointer() + getByteOffset();
        }
    }
}
