package dev.starling.api;

/**
 * Arithmetic a backend uses for the matrix products. Inputs and outputs always cross the API
 * as float32; the precision says how the products are computed. Tolerances per precision are
 * fixed in DESIGN section 6 and held by the conformance kit.
 */
public enum Precision {
    /** IEEE float32 products and accumulation. */
    FP32,
    /** TensorFloat-32 products (10-bit mantissa inputs), float32 accumulation. */
    TF32,
    /** bfloat16 inputs, float32 accumulation. */
    BF16,
    /** IEEE half-precision (fp16) inputs, float32 accumulation. */
    FP16
}
