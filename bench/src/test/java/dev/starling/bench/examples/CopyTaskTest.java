package dev.starling.bench.examples;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Gradients are right end to end: one attention layer trained through the backward pass learns to
 * copy token 0 into the last block of 4,096 tokens with BigBird (a global block reaches it) and
 * cannot with a window alone.
 */
class CopyTaskTest {
    private static final int STEPS = 200;

    private static double[] train(String pattern) {
        try (CopyTask task = new CopyTask(pattern, 4096, 1)) {
            return task.train(STEPS, 2);
        }
    }

    private static double mean(double[] losses, int from, int to) {
        return Arrays.stream(losses, from, to).average().orElseThrow();
    }

    @Test
    void bigBirdLearnsTheLongRangeCopyAndAWindowCannot() {
        double[] bigbird = train("bigbird(block=64, window=3, global=2, random=3)");
        double[] window = train("window(block=64, blocks=3)");
        double bigbirdStart = mean(bigbird, 0, 20);
        double bigbirdEnd = mean(bigbird, STEPS - 20, STEPS);
        double windowEnd = mean(window, STEPS - 20, STEPS);
        String report = String.format("bigbird %.3f -> %.3f, window -> %.3f", bigbirdStart, bigbirdEnd, windowEnd);
        assertTrue(bigbirdEnd < 0.2 && bigbirdEnd < 0.25 * bigbirdStart, "BigBird should learn: " + report);
        assertTrue(windowEnd > 0.5, "a window alone cannot reach token 0: " + report);
        // Each claim of CopyTask.STORY, which the example prints and the guide quotes.
        double bigbirdPeak = bigbird[CopyTask.peak(bigbird)];
        double windowPeak = window[CopyTask.peak(window)];
        String curve = report + String.format(", first %.3f, highest %.3f (window %.3f)", bigbird[0], bigbirdPeak, windowPeak);
        assertTrue(bigbird[0] > 0.05 && bigbird[0] < 0.2, "starts near 0.1: " + curve);
        assertTrue(bigbirdPeak > 1 && windowPeak > 1, "climbs above 1: " + curve);
        assertTrue(CopyTask.tailMean(bigbird, 20) < 0.1, "falls below 0.1 within 200 steps: " + curve);
    }

    @Test
    void theGuideSaysWhatTheExamplePrints() throws IOException {
        String guide = Files.readString(Path.of("..", "docs", "guide", "using-from-java.md")).replaceAll("\\s+", " ");
        assertTrue(guide.contains(CopyTask.STORY), "docs/guide/using-from-java.md describes CopyTask as: " + CopyTask.STORY);
    }
}
