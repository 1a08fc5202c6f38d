package dev.starling.backend.cuda;

import dev.starling.api.plan.WorkPlan;

/**
 * Whether the cuda backend splits long rows: {@code -Dstarling.cuda.splitBlocks=N} cuts every row
 * with more than {@code N} key blocks (BigBird's global rows see every block) into units of at
 * most {@code N} key blocks, computed by separate CTAs and merged exactly with their LSE (DESIGN
 * section 8; {@link WorkPlan}). Off by default: one unit per row ({@code N = Integer.MAX_VALUE})
 * until a GPU run has verified the split path.
 */
public final class SplitRows {
    /** The system property: key blocks per unit, a whole number {@code >= 1}. */
    public static final String PROPERTY = "starling.cuda.splitBlocks";
    /** Key blocks per unit when the property is not set: no row is split. */
    public static final int OFF = Integer.MAX_VALUE;

    private SplitRows() {
    }

    /**
     * Parses a value of {@link #PROPERTY}.
     *
     * @param value the property's value, or {@code null} when it is not set
     * @return {@code N}, or {@link #OFF} for {@code null}
     * @throws IllegalArgumentException naming the property and the value if it is not a whole number {@code >= 1}
     */
    public static int maxBlocksPerUnit(String value) {
        if (value == null) {
            return OFF;
        }
        int n;
        try {
            n = Integer.parseInt(value.strip());
        } catch (NumberFormatException e) {
            n = 0;
        }
        if (n < 1) {
            throw new IllegalArgumentException("-D" + PROPERTY + " must be a whole number of key blocks >= 1 (or unset, "
                    + "for no split), got \"" + value + "\"");
        }
        return n;
    }
}
