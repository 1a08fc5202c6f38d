package dev.starling.bench.compare;

import dev.starling.api.AttentionProblem;

/** Where dense baselines stop: one head's {@code N × N} float scores times their working copies must fit the budget. */
final class DenseBudget {

    private DenseBudget() {
    }

    /**
     * @param p the problem
     * @param budgetBytes memory the peer may use
     * @param copies working copies of the scores the peer makes
     * @return why the size is refused, or {@code null}
     */
    static String refuses(AttentionProblem p, long budgetBytes, int copies) {
        long bytes = 4L * p.queryLength() * p.keyLength() * copies;
        if (bytes <= budgetBytes) {
            return null;
        }
        return String.format("skipped: one head's %,d x %,d float scores (x%d working copies) need %.1f GiB, over the "
                + "%.1f GiB budget (--dense-memory)", p.queryLength(), p.keyLength(), copies, bytes / 1073741824.0,
                budgetBytes / 1073741824.0);
    }
}
