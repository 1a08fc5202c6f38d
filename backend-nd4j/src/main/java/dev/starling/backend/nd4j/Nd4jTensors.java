package dev.starling.backend.nd4j;

import dev.starling.api.ElementType;
import dev.starling.api.Tensor;
import dev.starling.api.TensorLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * {@code INDArray} ↔ {@link Tensor} without a copy: a tensor view over the array's own native
 * memory, with the array's strides and offset, so an nd4j plan reads q, k and v and writes out
 * where ND4J keeps them (any CPU backend can take the views too; the api widens or packs them
 * for a backend that does not read them as they are).
 *
 * <p>A rank-4 array is read in the given dimension order: {@link TensorLayout#BHSD} for
 * {@code [B, H, N, D]}, {@link TensorLayout#BSHD} for {@code [B, N, H, D]} (what a projection
 * produces). Any strides ND4J produces are fine (c or f order, views from {@code get(...)},
 * {@code permute(...)}) as long as none is negative. Element types: {@code FLOAT}, {@code FLOAT16}
 * (fp16) and {@code BFLOAT16}.
 *
 * <p>The view shares memory with the array: keep the array reachable while the view is in use
 * (ND4J frees native memory when its array is collected or closed), and do not use a view of an
 * array that lives in a workspace after the workspace closes.
 */
public final class Nd4jTensors {
    private Nd4jTensors() {
    }

    /**
     * A tensor view of {@code array}'s memory.
     *
     * @param array a rank-4 {@code FLOAT}, {@code FLOAT16} or {@code BFLOAT16} array on the CPU backend
     * @param order how the array's dimensions are ordered: BHSD {@code [B, H, N, D]} or BSHD {@code [B, N, H, D]}
     * @return the view, logical shape {@code (B, H, N, D)}
     * @throws IllegalArgumentException if the array is not rank 4, has another type, or a negative stride
     */
    public static Tensor view(INDArray array, TensorLayout order) {
        if (array == null || order == null) {
            throw new IllegalArgumentException("array and order must not be null");
        }
        if (array.rank() != 4) {
            throw new IllegalArgumentException("array must be rank 4 " + (order == TensorLayout.BHSD ? "[B, H, N, D]"
                    : "[B, N, H, D]") + " but has shape " + java.util.Arrays.toString(array.shape()));
        }
        ElementType type = elementType(array.dataType());
        long[] shape = array.shape();
        long[] stride = array.stride();
        int h = order == TensorLayout.BHSD ? 1 : 2;
        int n = order == TensorLayout.BHSD ? 2 : 1;
        long[] strides = {stride[0], stride[h], stride[n], stride[3]};
        for (long s : strides) {
            if (s < 0) {
                throw new IllegalArgumentException("array has a negative stride " + java.util.Arrays.toString(stride));
            }
        }
        ByteBuffer memory = array.data().pointer().position(0).asByteBuffer().order(ByteOrder.nativeOrder());
        return Tensor.strided(type, memory, array.offset(), strides, Math.toIntExact(shape[0]), Math.toIntExact(shape[h]),
                Math.toIntExact(shape[n]), Math.toIntExact(shape[3]));
    }

    private static ElementType elementType(DataType type) {
        if (type == DataType.FLOAT) {
            return ElementType.FP32;
        }
        if (type == DataType.FLOAT16) {   // FLOAT16 is the same constant as the deprecated HALF
            return ElementType.FP16;
        }
        if (type == DataType.BFLOAT16) {
            return ElementType.BF16;
        }
        throw new IllegalArgumentException("array type " + type + " is not FLOAT, FLOAT16 or BFLOAT16");
    }
}
