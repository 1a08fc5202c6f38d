package dev.starling.conformance;

import dev.starling.api.Precision;

/**
 * Error bounds per precision, DESIGN section 6: the one table. An element passes when
 * {@code |o − ref| <= atol + rtol·|ref|}; the whole output passes when also
 * {@code ‖o − ref‖ / ‖ref‖ <= relativeNorm}. LSE elements use their own {@code atol}/{@code rtol}.
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

    /** @return the tolerance of a precision */
    public static Tolerance of(Precision precision) {
        return switch (precision) {
            case FP32 -> FP32;
            case TF32 -> TF32;
            case BF16 -> BF16;
            case FP16 -> FP16;
        };
    }
}
