package dev.starling.conformance;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import java.util.Optional;

/**
 * Compares a backend's output and LSE with the oracle's. The loop is plain and fast; the rich
 * message ("at (b=0, h=3, i=517, d=12): 0.4131 vs 0.4129") is built only for the worst element.
 */
public final class Comparison {

    private Comparison() {
    }

    /**
     * The outcome of one comparison.
     *
     * @param ok whether every check passed
     * @param worstRatio largest {@code |o − ref| / (atol + rtol·|ref|)} over all elements (1 = at the limit)
     * @param relativeNorm {@code ‖o − ref‖ / ‖ref‖} of the output
     * @param message what failed and where, or a summary when {@code ok}
     */
    public record Outcome(boolean ok, double worstRatio, double relativeNorm, String message) {
    }

    /**
     * Compares output (and LSE when both are given).
     *
     * @param p the problem
     * @param expected oracle result
     * @param out the backend's output. Not modified.
     * @param lse the backend's LSE or {@code null}. Not modified.
     * @param tol the tolerance
     * @return the outcome
     */
    public static Outcome compare(AttentionProblem p, DenseOracle.Result expected, Tensor out, float[] lse, Tolerance tol) {
        int vdim = p.valueDim();
        double worst = 0;
        int worstIndex = -1;
        double diffNorm = 0;
        double refNorm = 0;
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                for (int i = 0; i < p.queryLength(); i++) {
                    int row = (b * p.queryHeads() + h) * p.queryLength() + i;
                    long o = out.index(b, h, i, 0);
                    for (int d = 0; d < vdim; d++) {
                        double ref = expected.out()[row * vdim + d];
                        double got = out.read(o + d * out.strides()[3]);
                        double ratio = ratio(got, ref, tol.atol(), tol.rtol());
                        if (worstIndex < 0 || ratio > worst) {
                            worst = ratio;
                            worstIndex = row * vdim + d;
                        }
                        if (!Double.isNaN(ref) && !Double.isNaN(got)) {
                            diffNorm += (got - ref) * (got - ref);
                            refNorm += ref * ref;
                        }
                    }
                }
            }
        }
        double relNorm = refNorm == 0 ? Math.sqrt(diffNorm) : Math.sqrt(diffNorm / refNorm);
        if (worst > 1) {
            return new Outcome(false, worst, relNorm, "output " + describe(p, worstIndex, expected, out, tol));
        }
        if (relNorm > tol.relativeNorm()) {
            return new Outcome(false, worst, relNorm, "output relative norm error " + relNorm + " exceeds "
                    + tol.relativeNorm());
        }
        if (lse != null) {
            Optional<String> lseProblem = compareLse(p, expected.lse(), lse, tol);
            if (lseProblem.isPresent()) {
                return new Outcome(false, worst, relNorm, lseProblem.get());
            }
        }
        return new Outcome(true, worst, relNorm, String.format("worst element at %.3f of tolerance, relative norm %.2e",
                worst, relNorm));
    }

    /**
     * Compares sampled rows of output (and LSE when given) with the oracle's rows, per element and as
     * the relative norm over those rows: for problems too long for the whole oracle.
     *
     * @param p the problem
     * @param rows the sampled rows, each {@code {b, h, i}}. Not modified.
     * @param expectedOut the oracle's {@code O[b, h, i, :]} of each sampled row. Not modified.
     * @param expectedLse the oracle's {@code LSE[b, h, i]} of each sampled row. Not modified.
     * @param out the backend's whole output. Not modified.
     * @param lse the backend's whole LSE or {@code null}. Not modified.
     * @param tol the tolerance
     * @return the outcome; the message names the worst element as {@code (b, h, i, d)}
     */
    public static Outcome compareRows(AttentionProblem p, int[][] rows, double[][] expectedOut, double[] expectedLse,
                                      Tensor out, float[] lse, Tolerance tol) {
        double worst = 0;
        int worstRow = -1;
        int worstD = -1;
        double diffNorm = 0;
        double refNorm = 0;
        for (int r = 0; r < rows.length; r++) {
            long o = out.index(rows[r][0], rows[r][1], rows[r][2], 0);
            for (int d = 0; d < p.valueDim(); d++) {
                double ref = expectedOut[r][d];
                double got = out.read(o + d * out.strides()[3]);
                double ratio = ratio(got, ref, tol.atol(), tol.rtol());
                if (worstRow < 0 || ratio > worst) {
                    worst = ratio;
                    worstRow = r;
                    worstD = d;
                }
                if (!Double.isNaN(ref) && !Double.isNaN(got)) {
                    diffNorm += (got - ref) * (got - ref);
                    refNorm += ref * ref;
                }
            }
        }
        double relNorm = refNorm == 0 ? Math.sqrt(diffNorm) : Math.sqrt(diffNorm / refNorm);
        if (worst > 1) {
            int[] at = rows[worstRow];
            double ref = expectedOut[worstRow][worstD];
            double got = out.get(at[0], at[1], at[2], worstD);
            return new Outcome(false, worst, relNorm, String.format(
                    "output at (b=%d, h=%d, i=%d, d=%d): %s vs expected %s (|diff| %.3g, allowed %.3g)", at[0], at[1], at[2],
                    worstD, got, ref, Math.abs(got - ref), tol.atol() + tol.rtol() * Math.abs(ref)));
        }
        if (relNorm > tol.relativeNorm()) {
            return new Outcome(false, worst, relNorm, "output relative norm error over the sampled rows " + relNorm
                    + " exceeds " + tol.relativeNorm());
        }
        if (lse != null) {
            for (int r = 0; r < rows.length; r++) {
                int[] at = rows[r];
                float got = lse[(at[0] * p.queryHeads() + at[1]) * p.queryLength() + at[2]];
                double ratio = ratio(got, expectedLse[r], tol.lseAtol(), tol.lseRtol());
                if (ratio > 1) {
                    return new Outcome(false, worst, relNorm, String.format(
                            "lse at (b=%d, h=%d, i=%d): %s vs expected %s (%.3g times the tolerance)", at[0], at[1], at[2],
                            got, expectedLse[r], ratio));
                }
            }
        }
        return new Outcome(true, worst, relNorm, String.format(
                "%d sampled rows: worst element at %.3f of tolerance, relative norm %.2e", rows.length, worst, relNorm));
    }

    /**
     * Compares two outputs of one problem bit for bit.
     *
     * @param expected the output taken as right. Not modified.
     * @param got the output to check. Not modified.
     * @return empty when every element has the same bits; else the first differing element as
     *         {@code (b, h, i, d)} with both values, and how many elements differ
     */
    public static Optional<String> bitDifference(Tensor expected, Tensor got) {
        String first = null;
        long differing = 0;
        for (int b = 0; b < expected.batch(); b++) {
            for (int h = 0; h < expected.heads(); h++) {
                for (int i = 0; i < expected.length(); i++) {
                    for (int d = 0; d < expected.dim(); d++) {
                        float x = expected.get(b, h, i, d);
                        float y = got.get(b, h, i, d);
                        if (Float.floatToRawIntBits(x) != Float.floatToRawIntBits(y)) {
                            if (differing++ == 0) {
                                first = String.format("at (b=%d, h=%d, i=%d, d=%d): %s where %s", b, h, i, d, y, x);
                            }
                        }
                    }
                }
            }
        }
        if (first == null) {
            return Optional.empty();
        }
        return Optional.of(first + " (" + differing + " of " + (long) expected.batch() * expected.heads() * expected.length() * expected.dim()
                + " elements differ)");
    }

    /**
     * Compares output (and LSE when both are given) element by element where the inputs may hold
     * NaN or infinities (DESIGN section 2, "Non-finite inputs"): exactly the elements that are NaN
     * in the oracle must be NaN, exactly those that are {@code +∞} must be {@code +∞} and those that
     * are {@code −∞} must be {@code −∞}; every element finite on both sides must agree within
     * {@code atol + rtol·|ref|}, and those elements together within the relative norm. The message
     * names the first mismatching element in {@code (b, h, i, d)} order (output before LSE) and how
     * many differ.
     *
     * @param p the problem
     * @param expected oracle result. Not modified.
     * @param out the backend's output. Not modified.
     * @param lse the backend's LSE or {@code null}. Not modified.
     * @param tol the tolerance
     * @return the outcome; {@code worstRatio} is over the elements finite on both sides
     */
    public static Outcome compareElementByElement(AttentionProblem p, DenseOracle.Result expected, Tensor out,
                                                  float[] lse, Tolerance tol) {
        int vdim = p.valueDim();
        double worst = 0;
        double diffNorm = 0;
        double refNorm = 0;
        int mismatches = 0;
        String first = null;
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                for (int i = 0; i < p.queryLength(); i++) {
                    int row = (b * p.queryHeads() + h) * p.queryLength() + i;
                    long o = out.index(b, h, i, 0);
                    for (int d = 0; d < vdim; d++) {
                        double ref = expected.out()[row * vdim + d];
                        double got = out.read(o + d * out.strides()[3]);
                        double ratio = elementRatio(got, ref, tol.atol(), tol.rtol());
                        if (ratio <= 1) {
                            if (Double.isFinite(ref)) {
                                worst = Math.max(worst, ratio);
                                diffNorm += (got - ref) * (got - ref);
                                refNorm += ref * ref;
                            }
                            continue;
                        }
                        if (mismatches++ == 0) {
                            first = String.format("output at (b=%d, h=%d, i=%d, d=%d): %s", b, h, i, d,
                                    mismatch(got, ref, tol.atol(), tol.rtol()));
                        }
                    }
                }
            }
        }
        int lseMismatches = 0;
        String firstLse = null;
        if (lse != null) {
            for (int row = 0; row < expected.lse().length; row++) {
                double ref = expected.lse()[row];
                double got = lse[row];
                if (elementRatio(got, ref, tol.lseAtol(), tol.lseRtol()) <= 1) {
                    continue;
                }
                if (lseMismatches++ == 0) {
                    int i = row % p.queryLength();
                    int h = row / p.queryLength() % p.queryHeads();
                    int b = row / p.queryLength() / p.queryHeads();
                    firstLse = String.format("lse at (b=%d, h=%d, i=%d): %s", b, h, i,
                            mismatch(got, ref, tol.lseAtol(), tol.lseRtol()));
                }
            }
        }
        double relNorm = refNorm == 0 ? Math.sqrt(diffNorm) : Math.sqrt(diffNorm / refNorm);
        String counts = mismatches + " output and " + lseMismatches + " lse elements differ";
        if (first != null) {
            return new Outcome(false, Double.POSITIVE_INFINITY, relNorm, first + " (" + counts + ")");
        }
        if (firstLse != null) {
            return new Outcome(false, Double.POSITIVE_INFINITY, relNorm, firstLse + " (" + counts + ")");
        }
        if (relNorm > tol.relativeNorm()) {
            return new Outcome(false, worst, relNorm, "output relative norm error over the finite elements " + relNorm
                    + " exceeds " + tol.relativeNorm());
        }
        return new Outcome(true, worst, relNorm, String.format(
                "non-finite elements as the oracle's, worst finite element at %.3f of tolerance, relative norm %.2e",
                worst, relNorm));
    }

    /** {@link #ratio} with the classes told apart: a different class (NaN, +∞, −∞, finite) is infinitely wrong. */
    private static double elementRatio(double got, double ref, double atol, double rtol) {
        if (kind(got) != kind(ref)) {
            return Double.POSITIVE_INFINITY;
        }
        return Double.isFinite(ref) ? Math.abs(got - ref) / (atol + rtol * Math.abs(ref)) : 0;
    }

    /** The class of a value: 0 finite, 1 NaN, 2 {@code +∞}, 3 {@code −∞}. */
    private static int kind(double x) {
        return Double.isNaN(x) ? 1 : x == Double.POSITIVE_INFINITY ? 2 : x == Double.NEGATIVE_INFINITY ? 3 : 0;
    }

    private static String kindName(double x) {
        return switch (kind(x)) {
            case 1 -> "NaN";
            case 2 -> "+Infinity";
            case 3 -> "-Infinity";
            default -> "a finite value";
        };
    }

    private static String mismatch(double got, double ref, double atol, double rtol) {
        if (kind(got) != kind(ref)) {
            return got + " vs expected " + ref + " (" + kindName(got) + " where the oracle has " + kindName(ref) + ")";
        }
        return String.format("%s vs expected %s (|diff| %.3g, allowed %.3g)", got, ref, Math.abs(got - ref),
                atol + rtol * Math.abs(ref));
    }

    /**
     * Error of one element against its tolerance: at most 1 passes. Equal values (both NaN, or
     * the same infinity) give 0; a NaN on one side only gives infinity.
     */
    static double ratio(double got, double ref, double atol, double rtol) {
        if (Double.compare(got, ref) == 0 || (Double.isNaN(got) && Double.isNaN(ref))) {
            return 0;
        }
        if (Double.isNaN(got) || Double.isNaN(ref) || Double.isInfinite(got) || Double.isInfinite(ref)) {
            return Double.POSITIVE_INFINITY;
        }
        return Math.abs(got - ref) / (atol + rtol * Math.abs(ref));
    }

    private static Optional<String> compareLse(AttentionProblem p, double[] ref, float[] got, Tolerance tol) {
        double worst = 0;
        int at = -1;
        for (int r = 0; r < ref.length; r++) {
            double ratio = ratio(got[r], ref[r], tol.lseAtol(), tol.lseRtol());
            if (ratio > worst) {
                worst = ratio;
                at = r;
            }
        }
        if (worst <= 1) {
            return Optional.empty();
        }
        int i = at % p.queryLength();
        int h = at / p.queryLength() % p.queryHeads();
        int b = at / p.queryLength() / p.queryHeads();
        return Optional.of(String.format("lse at (b=%d, h=%d, i=%d): %s vs expected %s (%.3g times the tolerance)",
                b, h, i, got[at], ref[at], worst));
    }

    private static String describe(AttentionProblem p, int index, DenseOracle.Result expected, Tensor out, Tolerance tol) {
        int vdim = p.valueDim();
        int d = index % vdim;
        int row = index / vdim;
        int i = row % p.queryLength();
        int h = row / p.queryLength() % p.queryHeads();
        int b = row / p.queryLength() / p.queryHeads();
        double ref = expected.out()[index];
        double got = out.get(b, h, i, d);
        return String.format("at (b=%d, h=%d, i=%d, d=%d): %s vs expected %s (|diff| %.3g, allowed %.3g)", b, h, i, d,
                got, ref, Math.abs(got - ref), tol.atol() + tol.rtol() * Math.abs(ref));
    }
}
