package dev.starling.bench.draw;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Stroke;
import java.awt.geom.Path2D;
import java.io.IOException;
import java.io.OutputStream;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;

/**
 * {@code starling compare --plot}: median time against sequence length, both on log scales, one
 * line per contender (solid for sparse backends, dashed for dense peers). The x axis has a tick and
 * a label at every measured length and nowhere else; the legend sits to the right of the plot
 * area, so it never covers a line.
 */
public final class ComparePlot {
    /** Width of the image in pixels. */
    public static final int WIDTH = 1100;
    /** Height of the image in pixels. */
    public static final int HEIGHT = 620;

    private static final Color[] PALETTE = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c),
        new Color(0x9467bd), new Color(0xff7f0e), new Color(0x8c564b), new Color(0xe377c2), new Color(0x17becf)};

    /**
     * One contender's line.
     *
     * @param name the contender
     * @param dense whether it computes full attention (drawn dashed)
     * @param lengths the lengths it has a time for, ascending. Not modified.
     * @param millis its median time at each of {@code lengths}, ms. Not modified.
     */
    public record Series(String name, boolean dense, List<Integer> lengths, List<Double> millis) {
    }

    private ComparePlot() {
    }

    /**
     * Draws the plot and writes it as a {@value #WIDTH} x {@value #HEIGHT} PNG.
     *
     * @param out where the PNG goes. Not closed.
     * @param title the title (pattern and shapes)
     * @param series the lines, at least one with a point
     * @throws IOException if writing fails
     * @throws IllegalArgumentException if there is no point to draw
     */
    public static void write(OutputStream out, String title, List<Series> series) throws IOException {
        TreeSet<Integer> lengths = new TreeSet<>();
        double minMs = Double.POSITIVE_INFINITY;
        double maxMs = 0;
        for (Series s : series) {
            lengths.addAll(s.lengths());
            for (double ms : s.millis()) {
                minMs = Math.min(minMs, ms);
                maxMs = Math.max(maxMs, ms);
            }
        }
        if (lengths.isEmpty()) {
            throw new IllegalArgumentException("nothing to plot: no contender has a time");
        }
        Canvas c = new Canvas(WIDTH, HEIGHT);
        int legendWidth = 40 + series.stream().mapToInt(s -> Canvas.width(Canvas.TEXT, label(s))).max().orElse(0);
        int left = 90;
        int top = 70;
        int right = WIDTH - Math.max(170, legendWidth) - 30;
        int bottom = HEIGHT - 70;

        // Log scales; x padded by a quarter of the smallest gap so the end points are not on the frame.
        double x0 = Math.log(lengths.first());
        double x1 = Math.log(lengths.last());
        double pad = lengths.size() == 1 ? Math.log(2) : Math.max(0.15 * (x1 - x0), 0.2);
        double xLo = x0 - pad;
        double xHi = x1 + pad;
        // y from the 1-2-5 step at or below min/1.25 to the one at or above max·1.25: no point on the frame.
        double yLo = Math.log10(step(Math.max(minMs, 1e-6) / 1.25, false));
        double yHi = Math.log10(step(Math.max(maxMs, 1e-6) * 1.25, true));
        Scale sx = new Scale(xLo, xHi, left, right);
        Scale sy = new Scale(yLo, yHi, bottom, top);

        c.text(Canvas.TITLE, Canvas.INK, "starling compare: median time per call", left, 28);
        c.clipped(Canvas.TEXT, Canvas.INK, title, left, 48, WIDTH - left - 20);

        // y grid and labels at 1, 2, 5 x 10^k.
        for (int e = (int) Math.floor(yLo); e <= (int) Math.ceil(yHi); e++) {
            for (int m : new int[] {1, 2, 5}) {
                double v = Math.log10(m) + e;
                if (v > yHi + 1e-9 || v < yLo - 1e-9) {
                    continue;
                }
                int y = (int) Math.round(sy.at(v));
                c.g.setColor(m == 1 ? Canvas.GRID : new Color(0xef, 0xef, 0xef));
                c.g.drawLine(left, y, right, y);
                c.rightAligned(Canvas.SMALL, Canvas.INK, millis(m * Math.pow(10, e)), left - 8, y + 4);
            }
        }
        // x grid, ticks and labels at every measured length.
        for (int n : lengths) {
            int x = (int) Math.round(sx.at(Math.log(n)));
            c.g.setColor(Canvas.GRID);
            c.g.drawLine(x, top, x, bottom);
            c.g.setColor(Canvas.INK);
            c.g.drawLine(x, bottom, x, bottom + 5);
            c.centred(Canvas.SMALL, Canvas.INK, String.format(Locale.ROOT, "%,d", n), x, bottom + 19);
        }
        c.g.setColor(Canvas.INK);
        c.g.drawRect(left, top, right - left, bottom - top);
        c.centred(Canvas.TEXT, Canvas.INK, "sequence length N (tokens, log scale)", (left + right) / 2, bottom + 45);
        drawVertical(c, "median time per call (ms, log scale)", 24, (top + bottom) / 2);

        int legendY = top + 8;
        int legendX = right + 24;
        c.text(Canvas.TEXT, Canvas.INK, "contenders", legendX, legendY + 4);
        legendY += 24;
        for (int i = 0; i < series.size(); i++) {
            Series s = series.get(i);
            Color color = PALETTE[i % PALETTE.length];
            Path2D.Double line = new Path2D.Double();
            for (int p = 0; p < s.lengths().size(); p++) {
                double x = sx.at(Math.log(s.lengths().get(p)));
                double y = sy.at(Math.log10(s.millis().get(p)));
                if (p == 0) {
                    line.moveTo(x, y);
                } else {
                    line.lineTo(x, y);
                }
            }
            c.g.setColor(color);
            c.g.setStroke(stroke(s.dense()));
            c.g.draw(line);
            c.g.setStroke(new BasicStroke(1.5f));
            for (int p = 0; p < s.lengths().size(); p++) {
                marker(c, s.dense(), (int) Math.round(sx.at(Math.log(s.lengths().get(p)))),
                        (int) Math.round(sy.at(Math.log10(s.millis().get(p)))), color);
            }
            // Legend entry: a short line with its marker, then the name.
            c.g.setColor(color);
            c.g.setStroke(stroke(s.dense()));
            c.g.drawLine(legendX, legendY, legendX + 28, legendY);
            c.g.setStroke(new BasicStroke(1.5f));
            marker(c, s.dense(), legendX + 14, legendY, color);
            c.text(Canvas.TEXT, Canvas.INK, label(s), legendX + 36, legendY + 5);
            legendY += 22;
        }
        c.g.setStroke(new BasicStroke(1f));
        c.text(Canvas.SMALL, Canvas.INK, "solid: sparse pattern", legendX, legendY + 10);
        c.text(Canvas.SMALL, Canvas.INK, "dashed: dense (all pairs)", legendX, legendY + 26);
        c.text(Canvas.SMALL, Canvas.INK, "no point: skipped or failed", legendX, legendY + 42);
        c.text(Canvas.SMALL, Canvas.INK, "at that length (see the table)", legendX, legendY + 56);
        c.writePng(out);
    }

    private static String label(Series s) {
        return s.name() + (s.dense() ? " (dense)" : " (sparse)");
    }

    private static Stroke stroke(boolean dense) {
        return dense ? new BasicStroke(2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_ROUND, 1f, new float[] {7f, 5f}, 0f)
                : new BasicStroke(2f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND);
    }

    /** A filled circle for sparse contenders, a filled square for dense ones. */
    private static void marker(Canvas c, boolean dense, int x, int y, Color color) {
        c.g.setColor(color);
        if (dense) {
            c.g.fillRect(x - 4, y - 4, 9, 9);
        } else {
            c.g.fillOval(x - 5, y - 5, 10, 10);
        }
    }

    private static void drawVertical(Canvas c, String text, int x, int yCentre) {
        java.awt.geom.AffineTransform saved = c.g.getTransform();
        c.g.rotate(-Math.PI / 2, x, yCentre);
        c.centred(Canvas.TEXT, Canvas.INK, text, x, yCentre);
        c.g.setTransform(saved);
    }

    /** The nearest value of the form 1, 2 or 5 times a power of ten at or above ({@code up}) or at or below {@code x}. */
    static double step(double x, boolean up) {
        double decade = Math.pow(10, Math.floor(Math.log10(x)));
        double[] steps = {1, 2, 5, 10};
        if (up) {
            for (double m : steps) {
                if (m * decade >= x * (1 - 1e-12)) {
                    return m * decade;
                }
            }
            return 10 * decade;
        }
        for (int i = steps.length - 1; i >= 0; i--) {
            if (steps[i] * decade <= x * (1 + 1e-12)) {
                return steps[i] * decade;
            }
        }
        return decade;
    }

    /** {@code 0.01}, {@code 0.5}, {@code 20}, {@code 1,000}. */
    private static String millis(double ms) {
        if (ms >= 1) {
            return String.format(Locale.ROOT, "%,.0f", ms);
        }
        return new java.math.BigDecimal(ms).round(new java.math.MathContext(1)).stripTrailingZeros().toPlainString();
    }

    /** A linear map from data coordinates (already logarithms) to pixels. */
    private record Scale(double lo, double hi, double pixelLo, double pixelHi) {
        double at(double v) {
            return pixelLo + (v - lo) / (hi - lo) * (pixelHi - pixelLo);
        }
    }
}
