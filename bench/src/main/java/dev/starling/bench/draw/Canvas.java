package dev.starling.bench.draw;

import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.OutputStream;
import javax.imageio.ImageIO;

/** A white RGB image with antialiased drawing and text helpers, shared by the tool's pictures. */
final class Canvas {
    static {
        // Draw without a display; must be set before AWT starts, which the first image does.
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
    }

    /** Regular text. */
    static final Font TEXT = new Font(Font.SANS_SERIF, Font.PLAIN, 13);
    /** Small text: tick labels, notes. */
    static final Font SMALL = new Font(Font.SANS_SERIF, Font.PLAIN, 11);
    /** Titles. */
    static final Font TITLE = new Font(Font.SANS_SERIF, Font.BOLD, 15);
    /** Text colour. */
    static final Color INK = new Color(0x22, 0x22, 0x22);
    /** Grid lines and frames. */
    static final Color GRID = new Color(0xdd, 0xdd, 0xdd);

    final BufferedImage image;
    final Graphics2D g;

    Canvas(int width, int height) {
        image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        g = image.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_STROKE_CONTROL, RenderingHints.VALUE_STROKE_PURE);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, width, height);
        g.setColor(INK);
    }

    /** Width of {@code text} in {@code font}, in pixels. */
    static int width(Font font, String text) {
        BufferedImage scratch = new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB);
        Graphics2D sg = scratch.createGraphics();
        try {
            return sg.getFontMetrics(font).stringWidth(text);
        } finally {
            sg.dispose();
        }
    }

    /** Draws {@code text} with its baseline at {@code y}, starting at {@code x}. */
    void text(Font font, Color color, String text, int x, int y) {
        g.setFont(font);
        g.setColor(color);
        g.drawString(text, x, y);
    }

    /** Draws {@code text} centred on {@code x}. */
    void centred(Font font, Color color, String text, int x, int y) {
        FontMetrics m = g.getFontMetrics(font);
        text(font, color, text, x - m.stringWidth(text) / 2, y);
    }

    /** Draws {@code text} ending at {@code x}. */
    void rightAligned(Font font, Color color, String text, int x, int y) {
        FontMetrics m = g.getFontMetrics(font);
        text(font, color, text, x - m.stringWidth(text), y);
    }

    /** Draws {@code text} clipped with "…" to {@code maxWidth} pixels. */
    void clipped(Font font, Color color, String text, int x, int y, int maxWidth) {
        FontMetrics m = g.getFontMetrics(font);
        String shown = text;
        if (m.stringWidth(shown) > maxWidth) {
            while (shown.length() > 1 && m.stringWidth(shown + "…") > maxWidth) {
                shown = shown.substring(0, shown.length() - 1);
            }
            shown += "…";
        }
        text(font, color, shown, x, y);
    }

    /** Writes the image as PNG and releases the graphics. */
    void writePng(OutputStream out) throws IOException {
        g.dispose();
        if (!ImageIO.write(image, "png", out)) {
            throw new IOException("no PNG writer in this Java runtime");
        }
    }
}
