package dev.starling.bench.draw;

import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.PatternSpec;
import java.awt.Color;
import java.io.IOException;
import java.io.OutputStream;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/**
 * {@code starling pattern --png}: a block layout as a picture, one panel per query head (at most
 * {@value #MAX_PANELS}; one panel when every head shares the layout), rows = query blocks from the
 * top, columns = key blocks from the left, each allowed block coloured by its {@link BlockKind}.
 *
 * <p>Up to {@value #PANEL} blocks a side, every block gets a square of pixels (panels about
 * {@value #SMALL_PANEL} pixels wide; a grid line between blocks when the squares are large enough to
 * show one). Beyond that, each pixel stands for {@code f × f} blocks. Lines (global rows and
 * columns, the window band) are one block thin and would fade if averaged, so a pixel that holds any
 * global or window block takes that colour at full strength; otherwise it takes the colour of its
 * random or plain allowed blocks, darker the larger the share of its blocks that are allowed. Rows
 * and columns made only of global blocks get a mark outside the panel too, since on the panel's edge
 * a one-pixel line is easy to miss.
 */
public final class LayoutImage {
    /** Most panels (heads) drawn; the caption and the tool say how many were left out. */
    public static final int MAX_PANELS = 8;
    /** Most pixels along a panel's side: beyond this many blocks a side, pixels stand for several blocks. */
    public static final int PANEL = 512;
    /** Target panel size for layouts small enough to draw each block as a square of pixels. */
    static final int SMALL_PANEL = 360;
    /** Panels per row of the picture. */
    static final int COLUMNS = 4;

    private static final int MARGIN = 24;
    private static final int GAP = 28;
    private static final int CAPTION = 28;
    private static final int HEADER = 112;
    private static final int MIN_WIDTH = 820;
    private static final Color EMPTY = new Color(0xf3, 0xf3, 0xf3);
    private static final Color FRAME = new Color(0xb0, 0xb0, 0xb0);

    private final PatternSpec pattern;
    private final BlockLayout layout;
    private final int heads;
    private final int panels;
    private final int blocksPerPixel;
    private final int pixelsPerBlock;
    private final int panelWidth;
    private final int panelHeight;
    private final int width;
    private final int height;

    private LayoutImage(PatternSpec pattern, BlockLayout layout, int heads) {
        this.pattern = pattern;
        this.layout = layout;
        this.heads = heads;
        this.panels = layout.isShared() ? 1 : Math.min(heads, MAX_PANELS);
        int side = Math.max(layout.queryBlocks(), layout.keyBlocks());
        if (side <= PANEL) {
            blocksPerPixel = 1;
            pixelsPerBlock = Math.max(1, Math.min(24, SMALL_PANEL / side));
        } else {
            blocksPerPixel = (side + PANEL - 1) / PANEL;
            pixelsPerBlock = 1;
        }
        panelWidth = ceilDiv(layout.keyBlocks(), blocksPerPixel) * pixelsPerBlock;
        panelHeight = ceilDiv(layout.queryBlocks(), blocksPerPixel) * pixelsPerBlock;
        int columns = Math.min(panels, COLUMNS);
        int rows = ceilDiv(panels, COLUMNS);
        width = Math.max(MIN_WIDTH, 2 * MARGIN + columns * panelWidth + (columns - 1) * GAP);
        height = HEADER + rows * (CAPTION + panelHeight + GAP) + MARGIN;
    }

    /**
     * Lays out the picture of a layout (nothing is drawn until {@link #writePng}).
     *
     * @param pattern the pattern that made the layout, for the title and the block kinds. Not modified.
     * @param layout the layout. Not modified.
     * @param heads query heads it was built for
     * @return the picture
     */
    public static LayoutImage of(PatternSpec pattern, BlockLayout layout, int heads) {
        if (heads < 1) {
            throw new IllegalArgumentException("heads must be >= 1, got " + heads);
        }
        return new LayoutImage(pattern, layout, heads);
    }

    /** @return width of the picture in pixels */
    public int width() {
        return width;
    }

    /** @return height of the picture in pixels */
    public int height() {
        return height;
    }

    /** @return panels drawn: 1 for a shared layout, else the heads shown */
    public int panels() {
        return panels;
    }

    /** @return query heads with a layout of their own that are not drawn (beyond {@value #MAX_PANELS}) */
    public int headsLeftOut() {
        return layout.isShared() ? 0 : heads - panels;
    }

    /** @return blocks per pixel along each side: 1 until a side has more than {@value #PANEL} blocks */
    public int blocksPerPixel() {
        return blocksPerPixel;
    }

    /** @return the scale in words, e.g. {@code "5 x 5 pixels per block"} or {@code "1 pixel = 3 x 3 blocks"} */
    public String scale() {
        return blocksPerPixel == 1 ? pixelsPerBlock + " x " + pixelsPerBlock + " pixel" + (pixelsPerBlock == 1 ? "" : "s")
                + " per block" : "1 pixel = " + blocksPerPixel + " x " + blocksPerPixel + " blocks";
    }

    /**
     * Draws the picture and writes it as PNG.
     *
     * @param out where it goes. Not closed.
     * @throws IOException if writing fails
     */
    public void writePng(OutputStream out) throws IOException {
        Canvas c = new Canvas(width, height);
        BlockKind.Classifier kinds = BlockKind.classifier(pattern, layout, heads);
        Set<BlockKind> seen = EnumSet.noneOf(BlockKind.class);
        int qPixels = ceilDiv(layout.queryBlocks(), blocksPerPixel);
        int kPixels = ceilDiv(layout.keyBlocks(), blocksPerPixel);
        for (int panel = 0; panel < panels; panel++) {
            int x0 = MARGIN + (panel % COLUMNS) * (panelWidth + GAP);
            int y0 = HEADER + (panel / COLUMNS) * (CAPTION + panelHeight + GAP) + CAPTION;
            c.text(Canvas.TEXT, Canvas.INK, layout.isShared() ? (heads == 1 ? "the layout" : "all " + heads
                    + " heads (one shared layout)") : "head " + panel, x0, y0 - 14);
            // counts[kind][qPixel * kPixels + kPixel]: allowed blocks of each kind under each pixel.
            int[][] counts = new int[BlockKind.values().length][qPixels * kPixels];
            // Rows and columns whose every allowed block is global: marked beside the panel.
            boolean[] globalRow = new boolean[layout.queryBlocks()];
            int[] columnBlocks = new int[layout.keyBlocks()];
            int[] columnGlobal = new int[layout.keyBlocks()];
            for (int qb = 0; qb < layout.queryBlocks(); qb++) {
                int rowGlobal = 0;
                for (int p = layout.rowBegin(panel, qb); p < layout.rowEnd(panel, qb); p++) {
                    int kb = layout.keyBlock(panel, p);
                    BlockKind kind = kinds.of(panel, qb, kb);
                    seen.add(kind);
                    counts[kind.ordinal()][(qb / blocksPerPixel) * kPixels + kb / blocksPerPixel]++;
                    columnBlocks[kb]++;
                    if (kind == BlockKind.GLOBAL) {
                        rowGlobal++;
                        columnGlobal[kb]++;
                    }
                }
                globalRow[qb] = rowGlobal > 0 && rowGlobal == layout.rowSize(panel, qb);
            }
            int inset = pixelsPerBlock >= 6 ? 1 : 0;   // a white grid line between large blocks
            for (int qp = 0; qp < qPixels; qp++) {
                int rowsHere = Math.min(blocksPerPixel, layout.queryBlocks() - qp * blocksPerPixel);
                for (int kp = 0; kp < kPixels; kp++) {
                    int colsHere = Math.min(blocksPerPixel, layout.keyBlocks() - kp * blocksPerPixel);
                    Color color = colour(counts, qp * kPixels + kp, rowsHere * colsHere);
                    c.g.setColor(color);
                    c.g.fillRect(x0 + kp * pixelsPerBlock, y0 + qp * pixelsPerBlock, pixelsPerBlock - inset,
                            pixelsPerBlock - inset);
                }
            }
            // The frame keeps a pixel of white from the blocks, so a global row on the edge stays visible.
            c.g.setColor(FRAME);
            c.g.drawRect(x0 - 2, y0 - 2, panelWidth + 3, panelHeight + 3);
            if (blocksPerPixel > 1) {
                rug(c, globalRow, x0, y0, true);
                boolean[] globalColumn = new boolean[layout.keyBlocks()];
                for (int kb = 0; kb < globalColumn.length; kb++) {
                    globalColumn[kb] = columnGlobal[kb] > 0 && columnGlobal[kb] == columnBlocks[kb];
                }
                rug(c, globalColumn, x0, y0, false);
            }
        }
        header(c, seen);
        c.writePng(out);
    }

    /**
     * Small triangles outside the panel pointing at global rows (left) or columns (top); none when
     * every row or column is global (a plain global pattern), which the panel already shows.
     */
    private void rug(Canvas c, boolean[] global, int x0, int y0, boolean rows) {
        int marked = 0;
        for (boolean g : global) {
            marked += g ? 1 : 0;
        }
        if (marked == 0 || marked == global.length) {
            return;
        }
        c.g.setColor(BlockKind.GLOBAL.color());
        int last = -1;
        for (int i = 0; i < global.length; i++) {
            int at = i / blocksPerPixel;
            if (!global[i] || at == last) {
                continue;
            }
            last = at;
            if (rows) {
                int y = y0 + at;
                c.g.fillPolygon(new int[] {x0 - 12, x0 - 4, x0 - 12}, new int[] {y - 4, y, y + 4}, 3);
            } else {
                int x = x0 + at;
                c.g.fillPolygon(new int[] {x - 4, x, x + 4}, new int[] {y0 - 12, y0 - 4, y0 - 12}, 3);
            }
        }
    }

    /**
     * The colour of one pixel: global or window at full strength if it holds any (lines stay visible
     * when downsampled), else its most common kind, shaded by the share of its blocks allowed.
     */
    private static Color colour(int[][] counts, int pixel, int blocks) {
        for (BlockKind line : new BlockKind[] {BlockKind.GLOBAL, BlockKind.WINDOW}) {
            if (counts[line.ordinal()][pixel] > 0) {
                return line.color();
            }
        }
        int total = 0;
        BlockKind best = null;
        for (BlockKind k : BlockKind.values()) {
            int n = counts[k.ordinal()][pixel];
            total += n;
            if (n > 0 && (best == null || n > counts[best.ordinal()][pixel])) {
                best = k;
            }
        }
        if (best == null) {
            return EMPTY;
        }
        double share = (double) total / blocks;
        double t = share >= 1 ? 1 : 0.55 + 0.45 * Math.sqrt(share);
        Color k = best.color();
        return new Color(mix(EMPTY.getRed(), k.getRed(), t), mix(EMPTY.getGreen(), k.getGreen(), t),
                mix(EMPTY.getBlue(), k.getBlue(), t));
    }

    private static int mix(int from, int to, double t) {
        return (int) Math.round(from + (to - from) * t);
    }

    private void header(Canvas c, Set<BlockKind> seen) {
        int textWidth = width - 2 * MARGIN;
        c.clipped(Canvas.TITLE, Canvas.INK, "starling pattern: " + pattern.text() + (layout.causal() && !pattern.text()
                .startsWith("causal(") ? " (causal)" : ""), MARGIN, 26, textWidth);
        c.clipped(Canvas.TEXT, Canvas.INK, String.format(Locale.ROOT, "Nq=%,d, Nk=%,d: %,d x %,d blocks of %d tokens, %d head%s"
                + " (%s layout)", layout.queryLength(), layout.keyLength(), layout.queryBlocks(), layout.keyBlocks(),
                layout.queryBlock(), heads, heads == 1 ? "" : "s", layout.isShared() ? "one shared" : "per-head"),
                MARGIN, 48, textWidth);
        String note = scale() + (blocksPerPixel > 1 ? ": a pixel with any global or window block shows that colour; "
                + "otherwise darker the more of its blocks are allowed" : "");
        if (headsLeftOut() > 0) {
            note += String.format(Locale.ROOT, "; heads 0-%d of %d shown, %d left out", panels - 1, heads, headsLeftOut());
        }
        c.clipped(Canvas.SMALL, Canvas.INK, note, MARGIN, 68, textWidth);
        int x = MARGIN;
        int y = 92;
        for (BlockKind k : BlockKind.values()) {
            if (seen.contains(k)) {
                x = swatch(c, k.color(), k.label(), x, y);
            }
        }
        x = swatch(c, EMPTY, "not allowed", x, y);
        c.clipped(Canvas.SMALL, Canvas.INK, "rows: query blocks, top down; columns: key blocks, left to right", x + 10, y,
                width - MARGIN - x - 10);
    }

    private static int swatch(Canvas c, Color color, String label, int x, int y) {
        c.g.setColor(color);
        c.g.fillRect(x, y - 11, 14, 14);
        c.g.setColor(Color.GRAY);
        c.g.drawRect(x, y - 11, 14, 14);
        c.text(Canvas.TEXT, Canvas.INK, label, x + 20, y + 1);
        return x + 20 + Canvas.width(Canvas.TEXT, label) + 22;
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
