package dev.starling.bench.compare;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The progress line moves while one long call runs (it froze for over 100 s before), on a terminal and in a log. */
class ProgressTest {
    private static final long SECOND = 1_000_000_000L;

    @Test
    void onATerminalEachTickRedrawsTheElapsedTime() {
        AtomicLong now = new AtomicLong();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Progress progress = new Progress(new PrintStream(out, true, StandardCharsets.UTF_8), true, now::get, false);
        progress.start(4);
        progress.step("torch-sdpa N=65536");
        progress.detail("call 1/5");
        now.addAndGet(7 * SECOND);
        progress.tick();
        String printed = out.toString(StandardCharsets.UTF_8);
        assertTrue(printed.endsWith("\r[" + ".".repeat(30) + "] 1/4 torch-sdpa N=65536 call 1/5 (7 s)" + " ".repeat(8)),
                "the last redraw: " + printed);
    }

    @Test
    void inALogALongStepSaysItIsStillRunningEveryThirtySeconds() {
        AtomicLong now = new AtomicLong();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Progress progress = new Progress(new PrintStream(out, true, StandardCharsets.UTF_8), false, now::get, false);
        progress.start(2);
        progress.step("nd4j-dense N=65536");
        progress.detail("warm-up call 1");
        for (int s = 1; s <= 65; s++) {
            now.addAndGet(SECOND);
            progress.tick();
        }
        String[] lines = out.toString(StandardCharsets.UTF_8).split("\n");
        assertEquals(3, lines.length, String.join("\n", lines));
        assertTrue(lines[1].endsWith("nd4j-dense N=65536 warm-up call 1, still running after 30 s (30 s)"), lines[1]);
        assertTrue(lines[2].endsWith("still running after 60 s (60 s)"), lines[2]);
    }
}
