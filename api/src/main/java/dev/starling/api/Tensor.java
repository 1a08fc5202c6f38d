package dev.starling.api;

import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Objects;

/**
 * A view of a four-dimensional attention tensor, logical shape {@code (batch, heads, length, dim)}
 * ({@code [B, H, N, D]}), over storage the caller owns. A view never copies.
 *
 * <p>Element {@code (b, h, n, d)} lives at element index
 * {@code start + b·sB + h·sH + n·sN + d·sD} of the storage, with the four strides
 * {@code (sB, sH, sN, sD)} in elements, each {@code ≥ 0}, in any order: BHSD, BSHD, one q/k/v slot
 * of a fused {@code [B, N, 3, H, D]} projection, a GQA cache with its own head stride — whatever
 * the producer wrote. The storage is
 * <ul>
 *   <li>a {@code float[]} for {@link ElementType#FP32} or a {@code short[]} for the 16-bit types
 *       (bits as {@link ElementType#widen} reads them), on the Java heap; or</li>
 *   <li>a {@code ByteBuffer} (normally direct, i.e. off-heap), read with absolute accesses in the
 *       byte order the buffer had when the view was made; element {@code i} is at byte
 *       {@code i · type.bytes()}. The buffer's position and limit are never read or changed. On
 *       JDK 22+ a {@code MemorySegment} becomes one with {@code segment.asByteBuffer()}, no copy.</li>
 * </ul>
 *
 * <p>Every element of the view must lie inside the storage (checked when the view is made).
 * Backends never modify input tensors and write every element of output tensors; an output must
 * not overlap itself (no two of its elements at one index) nor any other tensor of the call.
 *
 * <p>{@link #layout()} is the view's order (BHSD when the head stride exceeds the row stride,
 * BSHD otherwise); {@link #isPacked()} says whether the view is exactly a contiguous BHSD or BSHD
 * array from index 0. Backends read float32 heap views with {@link #data()}, {@link #offset} and
 * {@link #rowStride()}; the api hands a backend only the views it declared it reads
 * ({@link Feature#STRIDED_TENSORS}, {@link Feature#BF16_TENSORS}, {@link Feature#FP16_TENSORS},
 * {@link Feature#OFF_HEAP_TENSORS}) and converts the others once per call.
 */
public final class Tensor {
    private final ElementType type;
    private final Object storage;          // float[], short[] or an ordered private duplicate of a ByteBuffer
    private final ByteBuffer original;     // the caller's buffer (identity for aliasing), or null
    private final long start;
    private final long[] strides;          // sB, sH, sN, sD in elements
    private final int batch;
    private final int heads;
    private final int length;
    private final int dim;
    private final TensorLayout declared;   // the layout a packed factory was given, else null

    private Tensor(ElementType type, Object storage, ByteBuffer original, long start, long[] strides, int batch,
                   int heads, int length, int dim) {
        this(type, storage, original, start, strides, batch, heads, length, dim, null);
    }

    private Tensor(ElementType type, Object storage, ByteBuffer original, long start, long[] strides, int batch,
                   int heads, int length, int dim, TensorLayout declared) {
        this.type = type;
        this.storage = storage;
        this.original = original;
        this.start = start;
        this.strides = strides;
        this.batch = batch;
        this.heads = heads;
        this.length = length;
        this.dim = dim;
        this.declared = declared;
        check();
    }

    // ------------------------------------------------------------------ factories

    /**
     * A packed float32 tensor over {@code data} in the given memory layout. Like every factory here,
     * it takes the dimensions in logical order {@code (batch, heads, length, dim)} whatever the
     * layout; only the layout says how {@code data} is ordered ({@code BHSD}: {@code [B, H, N, D]},
     * {@code BSHD}: {@code [B, N, H, D]}, what a projection produces).
     *
     * @param layout the memory order of {@code data}
     * @param data the values, exactly {@code B·H·N·D} of them. Not copied.
     * @param batch {@code B}
     * @param heads {@code H}
     * @param length {@code N}
     * @param dim {@code D}
     * @return the view
     * @throws IllegalArgumentException if a dimension is negative or the array length is not {@code B·H·N·D}
     */
    public static Tensor of(TensorLayout layout, float[] data, int batch, int heads, int length, int dim) {
        Objects.requireNonNull(data, "data");
        return packed(ElementType.FP32, data, null, data.length, 0, layout, batch, heads, length, dim);
    }

    /**
     * A packed 16-bit tensor over {@code bits} in the given memory layout.
     *
     * @param layout the memory order of {@code bits}
     * @param type {@link ElementType#BF16} or {@link ElementType#FP16}
     * @param bits the elements' bits, exactly {@code B·H·N·D} of them. Not copied.
     * @param batch {@code B}
     * @param heads {@code H}
     * @param length {@code N}
     * @param dim {@code D}
     * @return the view
     * @throws IllegalArgumentException if {@code type} is FP32, a dimension is negative or the length is wrong
     */
    public static Tensor of(TensorLayout layout, ElementType type, short[] bits, int batch, int heads, int length,
                            int dim) {
        Objects.requireNonNull(bits, "bits");
        return packed(halfType(type), bits, null, bits.length, 0, layout, batch, heads, length, dim);
    }

    /**
     * A packed tensor over a buffer, starting {@code start} elements in: e.g. one layer's slice of
     * an off-heap KV cache. The buffer's byte order (set it with {@code order(...)} first: direct
     * buffers start big-endian, native memory is little-endian) is captured now.
     *
     * @param layout the memory order
     * @param type the element type
     * @param buffer the storage, normally direct. Not copied; position and limit ignored.
     * @param start index of element {@code (0, 0, 0, 0)}, in elements from byte 0 of the buffer
     * @param batch {@code B}
     * @param heads {@code H}
     * @param length {@code N}
     * @param dim {@code D}
     * @return the view
     * @throws IllegalArgumentException if the view does not fit inside the buffer's capacity
     */
    public static Tensor of(TensorLayout layout, ElementType type, ByteBuffer buffer, long start, int batch, int heads,
                            int length, int dim) {
        Objects.requireNonNull(buffer, "buffer");
        Objects.requireNonNull(type, "type");
        return packed(type, buffer.duplicate().order(buffer.order()), buffer, buffer.capacity() / type.bytes(), start,
                layout, batch, heads, length, dim);
    }

    /**
     * A {@code [B, H, N, D]} float32 tensor over {@code data}: {@code of(TensorLayout.BHSD, data, batch, heads, length, dim)}.
     *
     * @return the view
     */
    public static Tensor bhsd(float[] data, int batch, int heads, int length, int dim) {
        return of(TensorLayout.BHSD, data, batch, heads, length, dim);
    }

    /**
     * A zero-filled float32 heap tensor; dimensions in logical order {@code (batch, heads, length, dim)}.
     *
     * @return a new tensor owning a new array
     */
    public static Tensor zeros(TensorLayout layout, int batch, int heads, int length, int dim) {
        return zeros(ElementType.FP32, layout, batch, heads, length, dim);
    }

    /**
     * A zero-filled heap tensor of the given type ({@code float[]} for FP32, {@code short[]} otherwise).
     *
     * @return a new tensor owning a new array
     * @throws IllegalArgumentException if a dimension is negative or the element count exceeds an array's
     */
    public static Tensor zeros(ElementType type, TensorLayout layout, int batch, int heads, int length, int dim) {
        int count = arrayLength(type, layout, batch, heads, length, dim);
        Object array = type == ElementType.FP32 ? new float[count] : new short[count];
        return packed(type, array, null, count, 0, layout, batch, heads, length, dim);
    }

    /**
     * A general float32 view: element {@code (b, h, n, d)} at
     * {@code data[start + b·strides[0] + h·strides[1] + n·strides[2] + d·strides[3]]}.
     *
     * @param data the storage. Not copied.
     * @param start the index of element {@code (0, 0, 0, 0)}
     * @param strides {@code (sB, sH, sN, sD)} in elements, each {@code ≥ 0}
     * @param batch {@code B}
     * @param heads {@code H}
     * @param length {@code N}
     * @param dim {@code D}
     * @return the view
     * @throws IllegalArgumentException if a stride is negative or an element falls outside {@code data}
     */
    public static Tensor strided(float[] data, long start, long[] strides, int batch, int heads, int length, int dim) {
        Objects.requireNonNull(data, "data");
        return new Tensor(ElementType.FP32, data, null, start, stridesCopy(strides), batch, heads, length, dim);
    }

    /**
     * A general 16-bit heap view; see {@link #strided(float[], long, long[], int, int, int, int)}.
     *
     * @return the view
     */
    public static Tensor strided(ElementType type, short[] bits, long start, long[] strides, int batch, int heads,
                                 int length, int dim) {
        Objects.requireNonNull(bits, "bits");
        return new Tensor(halfType(type), bits, null, start, stridesCopy(strides), batch, heads, length, dim);
    }

    /**
     * A general view over a buffer; see {@link #strided(float[], long, long[], int, int, int, int)}
     * and {@link #of(TensorLayout, ElementType, ByteBuffer, long, int, int, int, int)} for the byte order.
     *
     * @return the view
     */
    public static Tensor strided(ElementType type, ByteBuffer buffer, long start, long[] strides, int batch, int heads,
                                 int length, int dim) {
        Objects.requireNonNull(buffer, "buffer");
        Objects.requireNonNull(type, "type");
        return new Tensor(type, buffer.duplicate().order(buffer.order()), buffer, start, stridesCopy(strides), batch,
                heads, length, dim);
    }

    /**
     * Slot {@code slot} of a fused projection stored as {@code [B, N, slots, H, D]} (what one
     * {@code x · W_qkv} produces, {@code slots = 3}: q, k, v): strides
     * {@code (N·slots·H·D, D, slots·H·D, 1)}, start {@code slot·H·D} elements after {@code base}.
     * Works on any tensor's storage: pass a packed tensor of the fused array's first
     * {@code B·N·slots·H·D} elements' storage through {@code fused}.
     *
     * @param fused any view over the fused storage; only its storage, type and start are used
     * @param slot which slot, {@code 0 ≤ slot < slots}
     * @param slots how many slots the projection fuses (3 for q, k, v)
     * @param batch {@code B}
     * @param length {@code N}
     * @param heads {@code H}
     * @param dim {@code D}
     * @return the view of that slot as a {@code (B, H, N, D)} tensor
     * @throws IllegalArgumentException if the slot is out of range or the fused array is too small
     */
    public static Tensor fusedSlot(Tensor fused, int slot, int slots, int batch, int length, int heads, int dim) {
        Objects.requireNonNull(fused, "fused");
        if (slots < 1 || slot < 0 || slot >= slots) {
            throw new IllegalArgumentException("slot " + slot + " of " + slots + " fused slots");
        }
        long row = (long) slots * heads * dim;
        long[] strides = {row * length, dim, row, 1};
        return new Tensor(fused.type, fused.storage, fused.original, fused.start + (long) slot * heads * dim, strides,
                batch, heads, length, dim);
    }

    /**
     * q, k and v as views of one fused float32 projection {@code data = [B, N, 3, H, D]}.
     *
     * @param data the fused projection, {@code B·N·3·H·D} floats. Not copied.
     * @return {@code {q, k, v}}, each {@code (B, H, N, D)}
     * @throws IllegalArgumentException if {@code data} is not {@code B·N·3·H·D} long
     */
    public static Tensor[] fusedQkv(float[] data, int batch, int length, int heads, int dim) {
        return fusedQkv(packedFused(ElementType.FP32, data, null, data.length, batch, length, heads, dim), batch, length,
                heads, dim);
    }

    /**
     * q, k and v as views of one fused 16-bit projection {@code bits = [B, N, 3, H, D]}.
     *
     * @return {@code {q, k, v}}, each {@code (B, H, N, D)}
     */
    public static Tensor[] fusedQkv(ElementType type, short[] bits, int batch, int length, int heads, int dim) {
        return fusedQkv(packedFused(halfType(type), bits, null, bits.length, batch, length, heads, dim), batch, length,
                heads, dim);
    }

    /**
     * q, k and v as views of one fused projection {@code [B, N, 3, H, D]} in a buffer, from element 0.
     *
     * @return {@code {q, k, v}}, each {@code (B, H, N, D)}
     */
    public static Tensor[] fusedQkv(ElementType type, ByteBuffer buffer, int batch, int length, int heads, int dim) {
        Objects.requireNonNull(buffer, "buffer");
        Objects.requireNonNull(type, "type");
        ByteBuffer ordered = buffer.duplicate().order(buffer.order());
        return fusedQkv(new Tensor(type, ordered, buffer, 0, new long[] {0, 0, 0, 0}, 1, 1, 1, 0), batch, length, heads,
                dim);
    }

    private static Tensor[] fusedQkv(Tensor storage, int batch, int length, int heads, int dim) {
        return new Tensor[] {fusedSlot(storage, 0, 3, batch, length, heads, dim),
                fusedSlot(storage, 1, 3, batch, length, heads, dim), fusedSlot(storage, 2, 3, batch, length, heads, dim)};
    }

    private static Tensor packedFused(ElementType type, Object array, ByteBuffer original, long capacity, int batch,
                                      int length, int heads, int dim) {
        long need = checkedCount(batch, length, 3L * heads, dim);
        if (need != capacity) {
            throw new IllegalArgumentException("a fused [B, N, 3, H, D] = " + Arrays.toString(new long[] {batch, length, 3,
                    heads, dim}) + " projection needs " + need + " elements but the array has " + capacity);
        }
        return new Tensor(type, array, original, 0, new long[] {0, 0, 0, 0}, 1, 1, 1, 0);
    }

    private static Tensor packed(ElementType type, Object storage, ByteBuffer original, long capacity, long start,
                                 TensorLayout layout, int batch, int heads, int length, int dim) {
        Objects.requireNonNull(layout, "layout");
        Objects.requireNonNull(type, "type");
        checkDims(layout, batch, heads, length, dim);
        long count = checkedCount(batch, heads, length, dim);
        if (original == null && count != capacity) {
            throw new IllegalArgumentException("tensor " + describe(layout, batch, heads, length, dim) + " needs "
                    + (count < 0 ? "more than 2^63" : String.valueOf(count)) + " " + (type == ElementType.FP32 ? "floats"
                    : type.label() + " elements") + " but its array has " + capacity);
        }
        return new Tensor(type, storage, original, start, packedStrides(layout, heads, length, dim), batch, heads, length,
                dim, layout);
    }

    // ------------------------------------------------------------------ accessors

    /** @return the element type */
    public ElementType type() {
        return type;
    }

    /** @return {@code B} */
    public int batch() {
        return batch;
    }

    /** @return {@code H} */
    public int heads() {
        return heads;
    }

    /** @return {@code N}, the sequence length */
    public int length() {
        return length;
    }

    /** @return {@code D}, the feature dimension per head */
    public int dim() {
        return dim;
    }

    /** @return {@code (sB, sH, sN, sD)} in elements (a copy) */
    public long[] strides() {
        return strides.clone();
    }

    /** @return the storage index of element {@code (0, 0, 0, 0)} */
    public long start() {
        return start;
    }

    /**
     * @return the view's order: {@link TensorLayout#BHSD} when a head's rows are farther apart than
     *         consecutive rows of one head ({@code sH > sN}, or {@code H = 1}), else {@link TensorLayout#BSHD}.
     *         A view made by a packed factory ({@link #of}, {@link #zeros}) reports the layout it was made with.
     */
    public TensorLayout layout() {
        if (declared != null) {
            return declared;
        }
        return strides[2] > strides[1] || Arrays.equals(strides, packedStrides(TensorLayout.BSHD, heads, length, dim))
                ? TensorLayout.BSHD : TensorLayout.BHSD;
    }

    /** @return whether elements may be written: false only for a read-only buffer */
    public boolean writable() {
        return original == null || !original.isReadOnly();
    }

    /** @return whether the storage is a heap array ({@code float[]} or {@code short[]}) */
    public boolean onHeap() {
        return original == null;
    }

    /**
     * @return whether this view is exactly a contiguous BHSD or BSHD array: start 0, the packed
     *         strides of {@link #layout()}, and storage holding exactly {@code B·H·N·D} elements
     */
    public boolean isPacked() {
        return start == 0 && capacity() == (long) batch * heads * length * dim
                && Arrays.equals(strides, packedStrides(layout(), heads, length, dim));
    }

    /** @return whether each row's {@code D} elements are adjacent ({@code sD = 1} or {@code D ≤ 1}) */
    public boolean rowsContiguous() {
        return strides[3] == 1 || dim <= 1;
    }

    /** @return the storage size in elements (array length, or buffer capacity / element bytes) */
    public long capacity() {
        if (storage instanceof float[] f) {
            return f.length;
        }
        if (storage instanceof short[] s) {
            return s.length;
        }
        return ((ByteBuffer) storage).capacity() / type.bytes();
    }

    /**
     * The float32 heap array behind this view, for backends' fast paths.
     *
     * @return the storage array
     * @throws IllegalStateException if the view is not float32 on the heap (the api converts such
     *         views before a backend sees them unless the backend declared it reads them)
     */
    public float[] data() {
        if (storage instanceof float[] f) {
            return f;
        }
        throw new IllegalStateException("tensor " + describe() + " is not a float32 heap array: read it with get(), "
                + "shorts() or buffer()");
    }

    /**
     * @return the 16-bit heap array behind this view
     * @throws IllegalStateException if the view is not 16-bit on the heap
     */
    public short[] shorts() {
        if (storage instanceof short[] s) {
            return s;
        }
        throw new IllegalStateException("tensor " + describe() + " is not a 16-bit heap array");
    }

    /**
     * @return the buffer behind this view: a duplicate with the captured byte order, to be read with
     *         absolute accesses at byte {@code index · type().bytes()} (shared by every caller; do
     *         not change its position)
     * @throws IllegalStateException if the view is on the heap
     */
    public ByteBuffer buffer() {
        if (storage instanceof ByteBuffer b) {
            return b;
        }
        throw new IllegalStateException("tensor " + describe() + " is on the Java heap, not in a buffer");
    }

    /**
     * @return storage index of element {@code (b, h, n, 0)}: for a float32 heap view, the offset in {@link #data()}
     */
    public int offset(int b, int h, int n) {
        return (int) (start + b * strides[0] + h * strides[1] + n * strides[2]);
    }

    /** @return storage index of element {@code (b, h, n, d)} */
    public long index(int b, int h, int n, int d) {
        return start + b * strides[0] + h * strides[1] + n * strides[2] + d * strides[3];
    }

    /** @return distance in elements between consecutive sequence positions of one head ({@code sN}) */
    public int rowStride() {
        return (int) strides[2];
    }

    /**
     * @return element {@code (b, h, n, d)} widened to float32
     * @throws IndexOutOfBoundsException naming the index and the shape when it is outside the view
     */
    public float get(int b, int h, int n, int d) {
        if (b < 0 || b >= batch || h < 0 || h >= heads || n < 0 || n >= length || d < 0 || d >= dim) {
            throw new IndexOutOfBoundsException("(" + b + ", " + h + ", " + n + ", " + d + ") is outside " + describe());
        }
        return read(index(b, h, n, d));
    }

    /** @return the element at storage index {@code i}, widened to float32; no view bounds check */
    public float read(long i) {
        if (storage instanceof float[] f) {
            return f[(int) i];
        }
        if (storage instanceof short[] s) {
            return type.widen(s[(int) i]);
        }
        ByteBuffer b = (ByteBuffer) storage;
        int at = Math.toIntExact(i * type.bytes());
        return type == ElementType.FP32 ? b.getFloat(at) : type.widen(b.getShort(at));
    }

    /**
     * Stores {@code value} at storage index {@code i}, rounded to the element type (nearest, ties
     * to even); no view bounds check. For outputs only.
     *
     * @param i the storage index
     * @param value the value
     */
    public void write(long i, float value) {
        if (storage instanceof float[] f) {
            f[(int) i] = value;
        } else if (storage instanceof short[] s) {
            s[(int) i] = type.round(value);
        } else {
            ByteBuffer b = (ByteBuffer) storage;
            int at = Math.toIntExact(i * type.bytes());
            if (type == ElementType.FP32) {
                b.putFloat(at, value);
            } else {
                b.putShort(at, type.round(value));
            }
        }
    }

    /**
     * The view of sequence positions {@code [from, from + count)}: same storage, same strides, no copy
     * (the keys of one shard, the filled part of a KV cache).
     *
     * @param from the first position, {@code 0 ≤ from ≤ N}
     * @param count how many, {@code 0 ≤ count ≤ N − from}
     * @return the {@code (B, H, count, D)} view
     * @throws IndexOutOfBoundsException when the range is outside {@code [0, N)}
     */
    public Tensor rows(int from, int count) {
        if (from < 0 || count < 0 || from > length - count) {
            throw new IndexOutOfBoundsException("rows [" + from + ", " + ((long) from + count) + ") of " + describe());
        }
        return new Tensor(type, storage, original, start + from * strides[2], strides, batch, heads, count, dim,
                declared);
    }

    /** @return the logical shape in memory order of {@link #layout()}, e.g. {@code [1, 8, 4096, 64]} for BHSD */
    public int[] shape() {
        return layout() == TensorLayout.BHSD ? new int[] {batch, heads, length, dim} : new int[] {batch, length, heads, dim};
    }

    // ------------------------------------------------------------------ copies

    /**
     * @return the same values as a packed float32 heap tensor in {@code target} layout (a copy), or
     *         this tensor when it already is one
     */
    public Tensor toLayout(TensorLayout target) {
        if (type == ElementType.FP32 && storage instanceof float[] && isPacked() && layout() == target) {
            return this;
        }
        Tensor out = zeros(target, batch, heads, length, dim);
        out.copyFrom(this);
        return out;
    }

    /** @return the same values as a packed float32 heap tensor in this view's order (this when it is one) */
    public Tensor toFloat32() {
        return toLayout(layout());
    }

    /** @return a deep copy: same type, same order, packed, on the heap */
    public Tensor copy() {
        Tensor out = zeros(type, layout(), batch, heads, length, dim);
        out.copyFrom(this);
        return out;
    }

    /**
     * Writes every element of {@code src} into this view, converting the type (widening exactly,
     * rounding to nearest even).
     *
     * @param src a tensor of the same logical shape. Not modified.
     * @throws IllegalArgumentException naming both shapes when they differ
     */
    public void copyFrom(Tensor src) {
        if (src.batch != batch || src.heads != heads || src.length != length || src.dim != dim) {
            throw new IllegalArgumentException("cannot copy " + src.describe() + " into " + describe());
        }
        boolean floats = storage instanceof float[] && src.storage instanceof float[] && rowsContiguous()
                && src.rowsContiguous();
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                for (int n = 0; n < length; n++) {
                    if (floats) {
                        System.arraycopy((float[]) src.storage, src.offset(b, h, n), (float[]) storage, offset(b, h, n), dim);
                        continue;
                    }
                    long from = src.index(b, h, n, 0);
                    long to = index(b, h, n, 0);
                    for (int d = 0; d < dim; d++) {
                        write(to + d * strides[3], src.read(from + d * src.strides[3]));
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------ aliasing

    /**
     * Whether this view and {@code other} share at least one element of memory. Exact for two
     * views of one storage with the same strides (q, k, v of a fused projection are disjoint);
     * otherwise true whenever their index ranges intersect. Buffers are compared by native address
     * on JDK 22+ (so two buffer objects over the same memory are caught) and by identity before.
     *
     * @param other another view
     * @return whether writing one could change the other
     */
    public boolean overlaps(Tensor other) {
        if (isEmpty() || other.isEmpty()) {
            return false;
        }
        long base = baseAddress();
        long otherBase = other.baseAddress();
        boolean addressed = base != 0 && otherBase != 0;   // both direct buffers with known addresses: compare memory
        if (!addressed && storageObject() != other.storageObject()) {
            return false;
        }
        if (!addressed) {
            base = 0;
            otherBase = 0;
        }
        long lo = base + start * type.bytes();
        long hi = base + (lastIndex() + 1) * type.bytes();
        long otherLo = otherBase + other.start * other.type.bytes();
        long otherHi = otherBase + (other.lastIndex() + 1) * other.type.bytes();
        if (hi <= otherLo || otherHi <= lo) {
            return false;
        }
        if (type != other.type || !Arrays.equals(strides, other.strides) || !sameShape(other)
                || (otherLo - lo) % type.bytes() != 0) {
            return true;
        }
        return translateHits((otherLo - lo) / type.bytes());
    }

    /**
     * @param array a heap array (an LSE {@code float[]}, say)
     * @return whether this view's storage is that array
     */
    public boolean isStoredIn(Object array) {
        return array != null && storage == array;
    }

    /**
     * Whether no two elements of this view share a storage index (what an output needs): with the
     * dimensions of size {@code > 1} sorted by stride, each stride exceeds the span of the smaller ones.
     *
     * @return whether the view is free of self-overlap
     */
    public boolean isNonOverlapping() {
        long[][] dims = sortedDims();
        long span = 0;
        for (long[] d : dims) {
            if (d[0] <= span) {
                return false;
            }
            span += (d[1] - 1) * d[0];
        }
        return true;
    }

    /** Whether some element of this view equals element {@code (x + delta)} of the same view, with nested strides. */
    private boolean translateHits(long delta) {
        if (!isNonOverlapping()) {
            return true;
        }
        long[][] dims = sortedDims();
        return decompose(dims, dims.length - 1, delta);
    }

    private static boolean decompose(long[][] dims, int i, long rest) {
        if (i < 0) {
            return rest == 0;
        }
        long stride = dims[i][0];
        long max = dims[i][1] - 1;
        long k = Math.floorDiv(rest, stride);
        for (long c = k; c <= k + 1; c++) {
            if (Math.abs(c) <= max && decompose(dims, i - 1, rest - c * stride)) {
                return true;
            }
        }
        return false;
    }

    /** @return {stride, size} of each dimension with size > 1, by stride ascending */
    private long[][] sortedDims() {
        int[] sizes = {batch, heads, length, dim};
        return java.util.stream.IntStream.range(0, 4).filter(i -> sizes[i] > 1)
                .mapToObj(i -> new long[] {strides[i], sizes[i]}).sorted((x, y) -> Long.compare(x[0], y[0]))
                .toArray(long[][]::new);
    }

    private boolean sameShape(Tensor o) {
        return o.batch == batch && o.heads == heads && o.length == length && o.dim == dim;
    }

    private boolean isEmpty() {
        return (long) batch * heads * length * dim == 0;
    }

    private long lastIndex() {
        return index(batch - 1, heads - 1, length - 1, dim - 1);
    }

    private Object storageObject() {
        return original != null ? original : storage;
    }

    /** @return the native address of a direct buffer on JDK 22+, else 0 (compare by identity) */
    private long baseAddress() {
        if (original == null || !original.isDirect()) {
            return 0;
        }
        return NativeAddress.of(original);
    }

    /** Reads a direct buffer's address through {@code MemorySegment} where the JDK has it (22+), by reflection. */
    private static final class NativeAddress {
        private static final Method OF_BUFFER;
        private static final Method ADDRESS;

        static {
            Method ofBuffer = null;
            Method address = null;
            try {
                Class<?> segment = Class.forName("java.lang.foreign.MemorySegment");
                if (Runtime.version().feature() >= 22) {
                    ofBuffer = segment.getMethod("ofBuffer", java.nio.Buffer.class);
                    address = segment.getMethod("address");
                }
            } catch (ReflectiveOperationException | LinkageError e) {
                ofBuffer = null;
            }
            OF_BUFFER = ofBuffer;
            ADDRESS = address;
        }

        static long of(ByteBuffer buffer) {
            if (OF_BUFFER == null) {
                return 0;
            }
            try {
                return (long) ADDRESS.invoke(OF_BUFFER.invoke(null, buffer));
            } catch (ReflectiveOperationException | RuntimeException e) {
                return 0;
            }
        }
    }

    // ------------------------------------------------------------------ checks and text

    private void check() {
        Objects.requireNonNull(type, "type");
        if (batch < 0 || heads < 0 || length < 0 || dim < 0) {
            throw new IllegalArgumentException("negative tensor dimension in " + describe(layout(), batch, heads, length, dim));
        }
        if (type == ElementType.FP32 ? storage instanceof short[] : storage instanceof float[]) {
            throw new IllegalArgumentException(type + " elements cannot be stored in a "
                    + (storage instanceof float[] ? "float[]" : "short[]"));
        }
        for (int i = 0; i < 4; i++) {
            if (strides[i] < 0) {
                throw new IllegalArgumentException("stride " + "BHND".charAt(i) + " is " + strides[i]
                        + " (strides must be >= 0) in " + describe());
            }
        }
        if (start < 0) {
            throw new IllegalArgumentException("start " + start + " is negative in " + describe());
        }
        if (isEmpty()) {
            return;
        }
        long last;
        try {
            last = Math.addExact(start, Math.addExact(Math.addExact(Math.multiplyExact(batch - 1L, strides[0]),
                    Math.multiplyExact(heads - 1L, strides[1])), Math.addExact(Math.multiplyExact(length - 1L, strides[2]),
                    Math.multiplyExact(dim - 1L, strides[3]))));
        } catch (ArithmeticException e) {
            last = Long.MAX_VALUE;
        }
        if (last >= capacity()) {
            throw new IllegalArgumentException("tensor " + describe() + " reaches element " + last + " but its storage holds "
                    + capacity() + " " + type.label() + " elements");
        }
    }

    /**
     * @return shape and layout, e.g. {@code [1, 8, 4096, 64] (BHSD)}; a view that is not packed also
     *         names its strides, start, element type and storage
     */
    public String describe() {
        String base = describe(layout(), batch, heads, length, dim);
        boolean plain = type == ElementType.FP32 && original == null && isPacked();
        if (plain) {
            return base;
        }
        return base.substring(0, base.length() - 1) + ", " + type.label() + (original == null ? "" : original.isDirect()
                ? ", direct buffer" : ", heap buffer") + (isPacked() ? "" : ", strides (B, H, N, D) " + Arrays.toString(strides)
                + ", start " + start) + ")";
    }

    /**
     * @return {@code [B, H, N, D] (BHSD)} or {@code [B, N, H, D] (BSHD)}: the dimensions in that layout's memory order
     */
    public static String describe(TensorLayout layout, int batch, int heads, int length, int dim) {
        int[] shape = layout == TensorLayout.BHSD ? new int[] {batch, heads, length, dim} : new int[] {batch, length, heads, dim};
        return Arrays.toString(shape) + " (" + layout + ")";
    }

    /**
     * Two tensors are equal when they have the same type, logical shape and order and every
     * element has the same bits (float32 compared as {@code Float.equals} does).
     */
    @Override
    public boolean equals(Object o) {
        if (!(o instanceof Tensor t) || t.type != type || !sameShape(t) || t.layout() != layout()) {
            return false;
        }
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                for (int n = 0; n < length; n++) {
                    for (int d = 0; d < dim; d++) {
                        if (Float.floatToIntBits(read(index(b, h, n, d))) != Float.floatToIntBits(t.read(t.index(b, h, n, d)))) {
                            return false;
                        }
                    }
                }
            }
        }
        return true;
    }

    @Override
    public int hashCode() {
        int hash = Objects.hash(type, layout(), batch, heads, length, dim);
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                for (int n = 0; n < length; n++) {
                    for (int d = 0; d < dim; d++) {
                        hash = 31 * hash + Float.floatToIntBits(read(index(b, h, n, d)));
                    }
                }
            }
        }
        return hash;
    }

    @Override
    public String toString() {
        return "Tensor" + describe();
    }

    private static ElementType halfType(ElementType type) {
        Objects.requireNonNull(type, "type");
        if (!type.isHalf()) {
            throw new IllegalArgumentException("a short[] holds 16-bit elements (BF16 or FP16), not " + type);
        }
        return type;
    }

    private static long[] stridesCopy(long[] strides) {
        Objects.requireNonNull(strides, "strides");
        if (strides.length != 4) {
            throw new IllegalArgumentException("strides must be (sB, sH, sN, sD), 4 values, but got " + strides.length);
        }
        return strides.clone();
    }

    private static long[] packedStrides(TensorLayout layout, int heads, int length, int dim) {
        return layout == TensorLayout.BHSD
                ? new long[] {(long) heads * length * dim, (long) length * dim, dim, 1}
                : new long[] {(long) length * heads * dim, dim, (long) heads * dim, 1};
    }

    private static void checkDims(TensorLayout layout, int batch, int heads, int length, int dim) {
        if (batch < 0 || heads < 0 || length < 0 || dim < 0) {
            throw new IllegalArgumentException("negative tensor dimension in " + describe(layout, batch, heads, length, dim));
        }
    }

    private static long checkedCount(long batch, long heads, long length, long dim) {
        try {
            return Math.multiplyExact(Math.multiplyExact(batch, heads), Math.multiplyExact(length, dim));
        } catch (ArithmeticException e) {
            return -1;
        }
    }

    private static int arrayLength(ElementType type, TensorLayout layout, int batch, int heads, int length, int dim) {
        checkDims(layout, batch, heads, length, dim);
        long count = checkedCount(batch, heads, length, dim);
        if (count < 0 || count > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tensor " + describe(layout, batch, heads, length, dim) + " has more "
                    + type.label() + " elements than a Java array holds");
        }
        return (int) count;
    }
}
