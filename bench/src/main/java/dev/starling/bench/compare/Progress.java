package dev.starling.bench.compare;

import java.io.PrintStream;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * A text progress bar on standard error: redrawn in place on a terminal, one line per step
 * otherwise (CI logs). The elapsed time keeps moving while one call runs for long (a dense peer
 * at 65,536 tokens takes a minute): on a terminal the line is redrawn every second, in a log a
 * "still running" line follows every {@value #LOG_TICK_SECONDS} s of one step.
 */
final class Progress {
    /** Seconds between the "still running" lines of a step in a log. */
    static final int LOG_TICK_SECONDS = 30;

    private final PrintStream err;
    private final boolean terminal;
    private final LongSupplier clock;
    private final boolean ticking;
    private final long start;
    private int total;
    private int done;
    private String label = "";
    private String detail = "";
    private long stepStart;
    private long lastLogTick;
    private ScheduledExecutorService ticker;

    Progress(PrintStream err, boolean terminal) {
        this(err, terminal, System::nanoTime, true);
    }

    /**
     * @param clock nanoseconds, as {@link System#nanoTime()}
     * @param ticking whether a daemon thread calls {@link #tick()} every second (tests call it themselves)
     */
    Progress(PrintStream err, boolean terminal, LongSupplier clock, boolean ticking) {
        this.err = err;
        this.terminal = terminal;
        this.clock = clock;
        this.ticking = ticking;
        this.start = clock.getAsLong();
        this.stepStart = start;
    }

    synchronized void start(int steps) {
        total = steps;
        done = 0;
        if (ticking && ticker == null) {
            ticker = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "starling-progress");
                t.setDaemon(true);
                return t;
            });
            ticker.scheduleAtFixedRate(this::tick, 1, 1, TimeUnit.SECONDS);
        }
    }

    synchronized void step(String what) {
        done++;
        label = what;
        detail = "";
        stepStart = clock.getAsLong();
        lastLogTick = 0;
        draw("", !terminal);
    }

    synchronized void detail(String what) {
        detail = what;
        if (terminal) {
            draw(what, false);
        }
    }

    /**
     * Once a second from the ticker thread: on a terminal, redraws the line so the elapsed time
     * moves; in a log, prints the step again with "still running" once it has run another
     * {@value #LOG_TICK_SECONDS} s.
     */
    synchronized void tick() {
        if (done == 0) {
            return;
        }
        if (terminal) {
            draw(detail, false);
            return;
        }
        long seconds = (clock.getAsLong() - stepStart) / 1_000_000_000L;
        long ticks = seconds / LOG_TICK_SECONDS;
        if (ticks > lastLogTick) {
            lastLogTick = ticks;
            draw((detail.isEmpty() ? "" : detail + ", ") + "still running after " + seconds + " s", true);
        }
    }

    private void draw(String detail, boolean newLine) {
        int width = 30;
        int filled = total == 0 ? width : (int) Math.round(width * (done - 1.0) / total);
        String bar = "#".repeat(Math.max(0, filled)) + ".".repeat(Math.max(0, width - filled));
        String line = String.format("[%s] %d/%d %s %s (%.0f s)", bar, done, total, label, detail,
                (clock.getAsLong() - start) / 1e9);
        if (newLine) {
            err.println(line);
        } else {
            err.print("\r" + line + " ".repeat(8));
        }
        err.flush();
    }

    synchronized void done() {
        if (ticker != null) {
            ticker.shutdownNow();
            ticker = null;
        }
        if (terminal) {
            err.print("\r" + " ".repeat(100) + "\r");
            err.flush();
        }
    }
}
