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
     * correct kernel, grow with the sequence and with the inputs; the absolute part of the bound is
     * therefore taken in units of the oracle tensor's root mean square: element {@code x} of tensor
     * {@code T} passes when {@code |x − ref| <= atol·rms(T) + rtol·|ref|}, {@code rms(T)} over the
     * oracle's finite elements of that tensor that some allowed pair reaches (the exact zeros of padded rows
     * and unread keys do not shrink it). Each tensor passes as a whole when also
     * {@code ‖x − ref‖ / ‖ref‖ <= relativeNorm} over its finite elements.
     *
     * @param atol absolute tolerance, in units of the oracle tensor's RMS
     * @param rtol relative tolerance of each element
     * @param relativeNorm bound on each gradient tensor's relative Frobenius norm error
     */
    public record Gradient(double atol, double rtol, double relativeNorm) {
        /**
         * The bound on one element.
         *
         * @param ref the oracle's element
         * @param rms the oracle tensor's root mean square over its finite, reached elements
         * @return {@code atol·rms + rtol·|ref|}
         */
        public double allowed(double ref, double rms) {
            return atol * rms + rtol * Math.abs(ref);
        }
    }

    /*
     * The gradient rows: the one place to set them. Provisional until a float32 backward kernel's
     * measured error on the kit's cases sets them (with a margin); never looser than 5x the forward row.
     */
    /** Gradients in float32: provisional, 5× the forward row (atol in units of the tensor's RMS). */
    public static final Gradient GRADIENT_FP32 = new Gradient(1e-4, 5e-4, 5e-5);
    /** Gradients with TensorFloat-32 products: provisional, 5× the forward row. */
    public static final Gradient GRADIENT_TF32 = new Gradient(1.5e-2, 1.5e-2, 5e-3);
    /** Gradients from bfloat16 inputs: provisional, 5× the forward row. */
    public static final Gradient GRADIENT_BF16 = new Gradient(1e-1, 2.5e-2, 5e-2);
    /** Gradients from IEEE half-precision inputs: provisional, 5× the forward row. */
    public static final Gradient GRADIENT_FP16 = new Gradient(2.5e-2, 1e-2, 1e-2);

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
