package dev.starling.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code starling pattern --png} (issue 13, item 12). */
class PatternPngTest {

    @Test
    void writesAPanelPerHeadAndSaysHowBigItIs(@TempDir Path dir) throws Exception {
        Path png = dir.resolve("layout.png");
        StarlingCliTest.Result r = StarlingCliTest.run("pattern", "bigbird(block=16, random=2)", "--seq", "256", "--heads", "3",
                "--png", png.toString());
        assertEquals(0, r.code(), r.err());
        BufferedImage image = ImageIO.read(png.toFile());
        // 16 x 16 blocks at 22 pixels each, three panels side by side.
        assertEquals(2 * 24 + 3 * 16 * 22 + 2 * 28, image.getWidth());
        assertEquals(112 + 28 + 16 * 22 + 28 + 24, image.getHeight());
        assertTrue(r.out().contains("wrote " + png + ": " + image.getWidth() + " x " + image.getHeight()
                + " pixels, 3 panels (one per head), 22 x 22 pixels per block"), r.out());
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count(), "no temporary left");
        }
    }

    @Test
    void leavesOutHeadsBeyondEightAndSaysSo(@TempDir Path dir) throws Exception {
        Path png = dir.resolve("layout.png");
        StarlingCliTest.Result r = StarlingCliTest.run("pattern", "bigbird(block=64)", "--seq", "1024", "--heads", "12",
                "--png", png.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("8 panels (one per head)"), r.out());
        assertTrue(r.out().contains("4 of 12 heads left out"), r.out());
        assertTrue(Files.size(png) > 1000);
    }

    @Test
    void aLongSequenceIsDownsampledToAReadableSize(@TempDir Path dir) throws Exception {
        Path png = dir.resolve("long.png");
        StarlingCliTest.Result r = StarlingCliTest.run("pattern", "bigbird(block=64)", "--seq", "65536", "--png",
                png.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("one panel, 1 pixel = 2 x 2 blocks"), r.out());
        BufferedImage image = ImageIO.read(png.toFile());
        assertTrue(image.getWidth() < 1200 && image.getHeight() < 800, image.getWidth() + " x " + image.getHeight());
    }

    @Test
    void refusesToWriteOverAnInputOrTheOtherOutput(@TempDir Path dir) throws Exception {
        Path npy = dir.resolve("layout.npy");
        assertEquals(0, StarlingCliTest.run("pattern", "dense(block=4)", "--seq", "16", "--npy", npy.toString()).code());
        byte[] before = Files.readAllBytes(npy);
        StarlingCliTest.Result r = StarlingCliTest.run("pattern", "layout(file=" + npy + ", block=4)", "--seq", "16", "--png",
                npy.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--png " + npy + " is the same file as the layout file"), r.err());
        Path both = dir.resolve("both");
        r = StarlingCliTest.run("pattern", "dense(block=4)", "--seq", "16", "--npy", both.toString(), "--png", both.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--npy " + both + " and --png " + both + " are the same file"), r.err());
        assertFalse(Files.exists(both));
        assertEquals(java.util.Arrays.toString(before), java.util.Arrays.toString(Files.readAllBytes(npy)));
        r = StarlingCliTest.run("pattern", "dense(block=4)", "--seq", "16", "--png", dir.resolve("no/such/dir.png").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("no such directory"), r.err());
    }
}
