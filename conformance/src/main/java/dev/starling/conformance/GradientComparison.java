package dev.starling.conformance;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.plan.TokenMask;

/**
 * Compares a backend's gradients {@code dq}, {@code dk}, {@code dv} with the float64
 * {@link GradientOracle}'s, element by element, with the gradient tolerance of DESIGN section 6
 * ({@link Tolerance.Gradient}):
 * <ul>
 *   <li>an element that no allowed pair reaches (the {@code dq} row of a query with no allowed key,
 *       padded or empty; the {@code dk} and {@code dv} of a key no row reads, padded or outside the
 *       layout) must be exactly zero ({@code +0.0} or {@code −0.0});</li>
 *   <li>every other element must be of the oracle's class — NaN where the oracle has NaN, the same
 *       infinity where it has one, finite where it is finite — and, when finite,
 *       {@code |x − ref| <= atol·rms(T) + rtol·|ref| + terms·size} with {@code rms(T)} the root mean
 *       square of the oracle's finite elements of that tensor that some allowed pair reaches and
 *       {@code size} the sum of the magnitudes of the element's terms ({@link GradientOracle.Result});</li>
 *   <li>each tensor's Frobenius norm error over its finite elements is at most
 *       {@code relativeNorm·‖ref‖ + terms·‖size‖}.</li>
 * </ul>
 * The message names the tensor and the element, {@code dq at (b, h, i, d)} or
 * {@code dk at (b, h, j, d)} (query rows {@code i}, keys {@code j}; {@code h} is the query head for
 * {@code dq} and the key/value head for {@code dk} and {@code dv}): the first structural zero or
 * class that differs, else the worst element, else the tensor whose norm is off.
 */
public final class GradientComparison {
    private static final String[] NAMES = {"dq", "dk", "dv"};

    private GradientComparison() {
    }

    /**
     * Compares the three gradients with the oracle's.
     *
     * @param p the problem
     * @param layout the layout the gradients were computed over. Not modified.
     * @param expected the oracle's gradients (BHSD). Not modified.
     * @param dq the backend's {@code dL/dQ}. Not modified.
     * @param dk the backend's {@code dL/dK}. Not modified.
     * @param dv the backend's {@code dL/dV}. Not modified.
     * @param tol the gradient tolerance
     * @return the outcome: {@code worstRatio} over the finite elements, {@code relativeNorm} the largest
     *         of the three tensors'
     */
    public static Comparison.Outcome compare(AttentionProblem p, BlockLayout layout, GradientOracle.Result expected,
                                             Tensor dq, Tensor dk, Tensor dv, Tolerance.Gradient tol) {
        return compare(reached(p, layout), expected, dq, dk, dv, tol);
    }

    /**
     * {@link #compare(AttentionProblem, BlockLayout, GradientOracle.Result, Tensor, Tensor, Tensor, Tolerance.Gradient)}
     * with the rows and keys any allowed pair reaches given ({@link #reached}).
     */
    static Comparison.Outcome compare(boolean[][] reached, GradientOracle.Result expected, Tensor dq, Tensor dk,
                                      Tensor dv, Tolerance.Gradient tol) {
        Tensor[] got = {dq, dk, dv};
        double[][] want = {expected.dq(), expected.dk(), expected.dv()};
        double[][] sizes = {expected.dqTerms(), expected.dkTerms(), expected.dvTerms()};
        double worst = 0;
        String worstMessage = null;
        double worstNorm = 0;
        String normMessage = null;
        String first = null;
        long mismatches = 0;
        for (int t = 0; t < 3; t++) {
            Tensor g = got[t];
            double[] ref = want[t];
            boolean[] live = reached[t == 0 ? 0 : 1];
            double rms = rms(ref, live, g.dim());
            double diffNorm = 0;
            double refNorm = 0;
            double sizeNorm = 0;
            int dim = g.dim();
            int at = 0;
            for (int b = 0; b < g.batch(); b++) {
                for (int h = 0; h < g.heads(); h++) {
                    for (int n = 0; n < g.length(); n++) {
                        boolean reachedHere = live[(b * g.heads() + h) * g.length() + n];
                        for (int d = 0; d < dim; d++, at++) {
                            double x = g.get(b, h, n, d);
                            double r = ref[at];
                            String problem = null;
                            if (!reachedHere) {
                                if (x != 0) {
                                    problem = x + " where no allowed pair reaches it (" + unreachedReason(t)
                                            + "): it must be exactly 0";
                                }
                            } else if (kind(x) != kind(r)) {
                                problem = x + " vs expected " + r + " (" + kindName(x) + " where the oracle has "
                                        + kindName(r) + ")";
                            }
                            if (problem != null) {
                                if (mismatches++ == 0) {
                                    first = where(t, b, h, n, d) + ": " + problem;
                                }
                                continue;
                            }
                            if (!Double.isFinite(r)) {
                                continue;
                            }
                            double size = sizes[t][at];
                            double allowed = tol.allowed(r, rms, size);
                            double diff = Math.abs(x - r);
                            double ratio = diff == 0 ? 0 : allowed == 0 ? Double.POSITIVE_INFINITY : diff / allowed;
                            if (worstMessage == null || ratio > worst) {
                                worst = ratio;
                                worstMessage = String.format("%s: %s vs expected %s (|diff| %.3g, allowed %.3g = %.3g·rms "
                                        + "%.3g + %.3g·|ref| + %.3g·terms %.3g)", where(t, b, h, n, d), (float) x, r, diff,
                                        allowed, tol.atol(), rms, tol.rtol(), tol.terms(), size);
                            }
                            diffNorm += (x - r) * (x - r);
                            refNorm += r * r;
                            if (Double.isFinite(size)) {
                                sizeNorm += size * size;
                            }
                        }
                    }
                }
            }
            double relNorm = refNorm == 0 ? Math.sqrt(diffNorm) : Math.sqrt(diffNorm / refNorm);
            double normBound = tol.relativeNorm() * Math.sqrt(refNorm) + tol.terms() * Math.sqrt(sizeNorm);
            if (Math.sqrt(diffNorm) > normBound && (normMessage == null || relNorm > worstNorm)) {
                normMessage = String.format("%s norm error %.3g (relative %.3g) exceeds %.3g = %.3g·‖ref‖ + %.3g·‖terms‖",
                        NAMES[t], Math.sqrt(diffNorm), relNorm, normBound, tol.relativeNorm(), tol.terms());
            }
            worstNorm = Math.max(worstNorm, relNorm);
        }
        if (first != null) {
            return new Comparison.Outcome(false, Double.POSITIVE_INFINITY, worstNorm,
                    first + " (" + mismatches + " gradient elements differ in class or must be zero)");
        }
        if (worst > 1) {
            return new Comparison.Outcome(false, worst, worstNorm, worstMessage);
        }
        if (normMessage != null) {
            return new Comparison.Outcome(false, worst, worstNorm, normMessage);
        }
        return new Comparison.Outcome(true, worst, worstNorm, String.format(
                "worst gradient element at %.3f of tolerance, relative norm %.2e", worst, worstNorm));
    }

    /**
     * Which gradient rows any allowed pair reaches: {@code [0]} the query rows {@code (b, h, i)}
     * with an allowed key, {@code [1]} the keys {@code (b, kvh, j)} some allowed pair reads.
     */
    static boolean[][] reached(AttentionProblem p, BlockLayout layout) {
        TokenMask mask = TokenMask.of(p, layout);
        int nq = p.queryLength();
        int nk = p.keyLength();
        boolean[] rows = new boolean[p.batch() * p.queryHeads() * nq];
        boolean[] keys = new boolean[p.batch() * p.kvHeads() * nk];
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.queryHeads(); h++) {
                int kvRow = (b * p.kvHeads() + p.kvHeadOf(h)) * nk;
                for (int i = 0; i < nq; i++) {
                    int row = (b * p.queryHeads() + h) * nq + i;
                    for (int j = 0; j < nk; j++) {
                        if (mask.allowed(b, h, i, j)) {
                            rows[row] = true;
                            keys[kvRow + j] = true;
                        }
                    }
                }
            }
        }
        return new boolean[][] {rows, keys};
    }

    /**
     * Root mean square of the finite elements that some allowed pair reaches (0 when there are none):
     * the typical size of the gradient, which padded rows and unread keys (exact zeros) do not shrink.
     *
     * @param a a gradient tensor in BHSD order
     * @param live per row of {@code a} ({@code dim} elements each), whether an allowed pair reaches it
     * @param dim elements per row
     */
    static double rms(double[] a, boolean[] live, int dim) {
        double sum = 0;
        long n = 0;
        for (int x = 0; x < a.length; x++) {
            if (live[x / dim] && Double.isFinite(a[x])) {
                sum += a[x] * a[x];
                n++;
            }
        }
        return n == 0 ? 0 : Math.sqrt(sum / n);
    }

    private static String unreachedReason(int tensor) {
        return tensor == 0 ? "a query row with no allowed key" : "a key no row reads";
    }

    private static String where(int t, int b, int h, int n, int d) {
        return String.format("%s at (b=%d, h=%d, %s=%d, d=%d)", NAMES[t], b, h, t == 0 ? "i" : "j", n, d);
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
}
