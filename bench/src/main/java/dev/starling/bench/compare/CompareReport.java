package dev.starling.bench.compare;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** The table, the CSV and the log-log plot of a {@link CompareRun}. */
final class CompareReport {

    private CompareReport() {
    }

    static void table(PrintWriter out, List<CompareRun.Cell> cells) {
        out.printf(Locale.ROOT, "%-12s %-6s %7s %11s %19s %9s %10s %9s%n", "contender", "kind", "N", "median ms",
                "spread (min-max)", "GFLOP/s", "x fastest", "peak MB");
        for (CompareRun.Cell c : cells) {
            String kind = c.dense() ? "dense" : "sparse";
            String n = c.length() == 0 ? "-" : String.format(Locale.ROOT, "%,d", c.length());
            if (!c.ok()) {
                out.printf(Locale.ROOT, "%-12s %-6s %7s  %s%n", c.contender(), kind, n, c.status());
                continue;
            }
            out.printf(Locale.ROOT, "%-12s %-6s %7s %11.1f %19s %9.2f %10.2f %9.0f%n", c.contender(), kind, n, c.medianMs(),
                    String.format(Locale.ROOT, "%.1f-%.1f (%d)", c.minMs(), c.maxMs(), c.reps()), c.gflops(), c.relative(),
                    c.peakBytes() / 1048576.0);
        }
        out.flush();
    }

    static void csv(Path file, List<CompareRun.Cell> cells) throws IOException {
        List<String> lines = new ArrayList<>();
        lines.add("contender,kind,length,status,median_ms,min_ms,max_ms,calls,gflops,relative_to_fastest,peak_mb");
        for (CompareRun.Cell c : cells) {
            lines.add(String.join(",", c.contender(), c.dense() ? "dense" : "sparse", String.valueOf(c.length()),
                    '"' + c.status().replace("\"", "'") + '"', num(c.medianMs()), num(c.minMs()), num(c.maxMs()),
                    String.valueOf(c.reps()), num(c.gflops()), num(c.relative()),
                    c.ok() ? num(c.peakBytes() / 1048576.0) : ""));
        }
        Files.write(file, lines);
    }

    private static String num(double x) {
        return Double.isNaN(x) ? "" : String.format(Locale.ROOT, "%.4f", x);
    }

    static void plot(Path file, List<CompareRun.Cell> cells, String title) throws IOException {
        System.setProperty("java.awt.headless", "true");
        XYChart chart = new XYChartBuilder().width(900).height(600).title(title)
                .xAxisTitle("sequence length (tokens)").yAxisTitle("time per call (ms)").build();
        chart.getStyler().setXAxisLogarithmic(true);
        chart.getStyler().setYAxisLogarithmic(true);
        chart.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideNW);
        chart.getStyler().setMarkerSize(8);
        Map<String, List<CompareRun.Cell>> series = new LinkedHashMap<>();
        for (CompareRun.Cell c : cells) {
            if (c.ok()) {
                series.computeIfAbsent(c.contender() + (c.dense() ? " (dense)" : " (sparse)"), x -> new ArrayList<>()).add(c);
            }
        }
        for (Map.Entry<String, List<CompareRun.Cell>> e : series.entrySet()) {
            double[] x = e.getValue().stream().mapToDouble(CompareRun.Cell::length).toArray();
            double[] y = e.getValue().stream().mapToDouble(CompareRun.Cell::medianMs).toArray();
            XYSeries s = chart.addSeries(e.getKey(), x, y);
            s.setMarker(SeriesMarkers.CIRCLE);
        }
        if (series.isEmpty()) {
            throw new IOException("nothing to plot: no contender produced a time");
        }
        String name = file.getFileName().toString();
        String base = name.toLowerCase(Locale.ROOT).endsWith(".png") ? file.toString().substring(0, file.toString().length() - 4)
                : file.toString();
        BitmapEncoder.saveBitmap(chart, base, BitmapEncoder.BitmapFormat.PNG);
    }
}
