package dev.starling.bench.compare;

import java.io.PrintStream;

/**
 * A text progress bar on standard error: redrawn in place on a terminal, one line per step
 * otherwise (CI logs).
 */
final class Progress {
    private final PrintStream err;
    private final boolean terminal;
    private final long start = System.nanoTime();
    private int total;
    private int done;
    private String label = "";

    Progress(PrintStream err, boolean terminal) {
        this.err = err;
        this.terminal = terminal;
    }

    void start(int steps) {
        total = steps;
        done = 0;
    }

    void step(String what) {
        done++;
        label = what;
        draw("", !terminal);
    }

    void detail(String what) {
        if (terminal) {
            draw(what, false);
        }
    }

    private void draw(String detail, boolean newLine) {
        int width = 30;
        int filled = total == 0 ? width : (int) Math.round(width * (done - 1.0) / total);
        String bar = "#".repeat(Math.max(0, filled)) + ".".repeat(Math.max(0, width - filled));
        String line = String.format("[%s] %d/%d %s %s (%.0f s)", bar, done, total, label, detail,
                (System.nanoTime() - start) / 1e9);
        if (newLine) {
            err.println(line);
        } else {
            err.print("\r" + line + " ".repeat(8));
        }
        err.flush();
    }

    void done() {
        if (terminal) {
            err.print("\r" + " ".repeat(100) + "\r");
            err.flush();
        }
    }
}
