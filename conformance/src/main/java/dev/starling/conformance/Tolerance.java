package dev.starling.conformance;

import dev.starling.api.Precision;

/**
 * Error bounds per precision, DESIGN section 6: the one table. An element passes when
 * {@code |o − ref| <= atol + rtol·|ref|}; the whole output passes when also
 * {@code ‖o − ref‖ / ‖ref‖ <= relativeNorm}. LSE elements use their own {@code atol}/{@code rtol}.
 * Gradients (the backward pass) have their own row per precision, {@link #gradient(Precision)}.
 *
 * @param atol absolute tolerance of output elements
 * @param rtol relative tolerance of output elements
 * @param relativeNorm bound on the relative Frobenius norm of the output error
 * @param lseAtol absolute tolerance of LSE elements
 * @param lseRtol relative tolerance of LSE elements
 */
public record Tolerance(double atol, double rtol, double relativeNorm, double lseAtol, double lseRtol) {
    /** float32 arithmetic. */
    public static final Tolerance FP32 = new Tolerance(2e-5, 1e-4, 1e-5, 1e-4, 1e-6);
    /** TensorFloat-32 products. */
    public static final Tolerance TF32 = new Tolerance(3e-3, 3e-3, 1e-3, 3e-3, 1e-3);
    /** bfloat16 inputs. */
    public static final Tolerance BF16 = new Tolerance(2e-2, 5e-3, 1e-2, 2e-2, 1e-2);
    /** IEEE half-precision inputs. */
    public static final Tolerance FP16 = new Tolerance(5e-3, 2e-3, 2e-3, 5e-3, 2e-3);

    /**
     * Error bounds of the gradients {@code dq}, {@code dk}, {@code dv} against the float64 gradient
     * oracle (DESIGN section 6). A gradient element is a sum over many keys (for {@code dq}) or many
     * query rows and heads (for {@code dk}, {@code dv}), so its size, and the rounding error of a
     * correct kernel, grow with the sequence and with the inputs, and its terms can cancel. Element
     * {@code x} of tensor {@code T} passes when
     * {@code |x − ref| <= atol·rms(T) + rtol·|ref| + terms·size}: {@code rms(T)} over the oracle's finite
     * elements of that tensor that some allowed pair reaches (the exact zeros of padded rows and unread
     * keys do not shrink it), {@code size} the sum of the magnitudes of the element's terms
     * ({@link GradientOracle.Result}), which bounds the rounding error of a correct kernel even where the
     * terms cancel to zero. Each tensor passes as a whole when also
     * {@code ‖x − ref‖ <= relativeNorm·‖ref‖ + terms·‖size‖} over its finite elements.
     *
     * @param atol absolute tolerance, in units of the oracle tensor's RMS
     * @param rtol relative tolerance of each element
     * @param relativeNorm bound on each gradient tensor's relative Frobenius norm error
     * @param terms tolerance relative to the sum of the magnitudes of an element's terms
     */
    public record Gradient(double atol, double rtol, double relativeNorm, double terms) {
        /**
         * The bound on one element.
         *
         * @param ref the oracle's element
         * @param rms the oracle tensor's root mean square over its finite, reached elements
         * @param size the sum of the magnitudes of the element's terms (a non-finite size counts as 0)
         * @return {@code atol·rms + rtol·|ref| + terms·size}
         */
        public double allowed(double ref, double rms, double size) {
            return atol * rms + rtol * Math.abs(ref) + (Double.isFinite(size) ? terms * size : 0);
        }
    }

    /*
     * The gradient rows: the one place to set them (DESIGN section 6 gives the reasons). fp32: from the
     * vector backend's float32 backward, whose worst element on the kit's cases and at 16,384 tokens sits
     * well inside it; the reduced precisions are 5x their forward rows, provisional (no backend declares
     * backward in them yet).
     */
    /** Gradients in float32: atol 1e-4 (× the tensor's RMS), rtol 5e-4, norm 5e-5, 1e-5 of the terms' size. */
    public static final Gradient GRADIENT_FP32 = new Gradient(1e-4, 5e-4, 5e-5, 1e-5);
    /** Gradients with TensorFloat-32 products: provisional, 5× the forward row. */
    public static final Gradient GRADIENT_TF32 = new Gradient(1.5e-2, 1.5e-2, 5e-3, 1.5e-2);
    /** Gradients from bfloat16 inputs: provisional, 5× the forward row. */
    public static final Gradient GRADIENT_BF16 = new Gradient(1e-1, 2.5e-2, 5e-2, 2.5e-2);
    /** Gradients from IEEE half-precision inputs: provisional, 5× the forward row. */
    public static final Gradient GRADIENT_FP16 = new Gradient(2.5e-2, 1e-2, 1e-2, 1e-2);

    /**
     * @param precision the precision
     * @return the tolerance of a precision
     */
    public static Tolerance of(Precision precision) {
        return switch (precision) {
            case FP32 -> FP32;
            case TF32 -> TF32;
            case BF16 -> BF16;
            case FP16 -> FP16;
        };
    }

    /**
     * @param precision the precision
     * @return the gradient tolerance of a precision
     */
    public static Gradient gradient(Precision precision) {
        return switch (precision) {
            case FP32 -> GRADIENT_FP32;
            case TF32 -> GRADIENT_TF32;
            case BF16 -> GRADIENT_BF16;
            case FP16 -> GRADIENT_FP16;
        };
    }
}
