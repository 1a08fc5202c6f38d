package dev.starling.bench.draw;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.Patterns;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;

/** The pattern picture: sizes, panels, downsampling, and each block drawn in its kind's colour. */
class LayoutImageTest {

    private static BufferedImage draw(LayoutImage image) throws Exception {
        ByteArrayOutputStream png = new ByteArrayOutputStream();
        image.writePng(png);
        BufferedImage read = ImageIO.read(new ByteArrayInputStream(png.toByteArray()));
        assertEquals(image.width(), read.getWidth());
        assertEquals(image.height(), read.getHeight());
        return read;
    }

    /** The centre pixel of block (qb, kb) of panel 0, for a picture of one block per 22 pixels. */
    private static int rgbOfBlock(BufferedImage image, int qb, int kb) {
        return image.getRGB(24 + kb * 22 + 10, 112 + 28 + qb * 22 + 10) & 0xffffff;
    }

    @Test
    void bigBirdBlocksAreGlobalWindowOrRandomInTheirColours() throws Exception {
        PatternSpec spec = Patterns.parse("bigbird(block=16, window=3, global=2, random=2, seed=1)");
        BlockLayout layout = spec.layout(256, 256, 3);
        LayoutImage image = LayoutImage.of(spec, layout, 3);
        assertEquals(3, image.panels());
        assertEquals(0, image.headsLeftOut());
        assertEquals(1, image.blocksPerPixel());
        assertEquals("22 x 22 pixels per block", image.scale());
        assertEquals(2 * 24 + 3 * 16 * 22 + 2 * 28, image.width());
        BufferedImage png = draw(image);
        int global = BlockKind.GLOBAL.color().getRGB() & 0xffffff;
        int window = BlockKind.WINDOW.color().getRGB() & 0xffffff;
        int random = BlockKind.RANDOM.color().getRGB() & 0xffffff;
        assertEquals(global, rgbOfBlock(png, 0, 7), "a global row");
        assertEquals(global, rgbOfBlock(png, 7, 15), "a global column");
        assertEquals(window, rgbOfBlock(png, 7, 7), "the diagonal");
        assertEquals(window, rgbOfBlock(png, 7, 8), "the window");
        int randoms = 0;
        for (int kb = 2; kb < 15; kb++) {
            if (Math.abs(kb - 7) > 1 && kb != 0 && kb != 15) {
                int rgb = rgbOfBlock(png, 7, kb);
                if (layout.allowed(0, 7, kb)) {
                    assertEquals(random, rgb, "random block 7," + kb);
                    randoms++;
                } else {
                    assertNotEquals(random, rgb);
                }
            }
        }
        assertEquals(2, randoms, "bigbird draws 2 random blocks per row");
    }

    @Test
    void classifiesLongformerUnionAndCausalByTheirParts() {
        PatternSpec longformer = Patterns.parse("causal(longformer(block=16, window=3, global=[0, -1]))");
        BlockLayout layout = longformer.layout(160, 160, 1, true);
        BlockKind.Classifier kinds = BlockKind.classifier(longformer, layout, 1);
        assertEquals(BlockKind.GLOBAL, kinds.of(0, 5, 0), "global column 0");
        assertEquals(BlockKind.GLOBAL, kinds.of(0, 9, 5), "global row -1 = 9");
        assertEquals(BlockKind.WINDOW, kinds.of(0, 5, 4));

        PatternSpec union = Patterns.parse("union(window(block=16, blocks=1), random(block=16, blocks=2, seed=3), "
                + "strided(block=16, stride=4))");
        BlockLayout u = union.layout(256, 256, 1);
        BlockKind.Classifier unionKinds = BlockKind.classifier(union, u, 1);
        assertEquals(BlockKind.WINDOW, unionKinds.of(0, 5, 5), "window wins over the other parts");
        PatternSpec strided = Patterns.parse("strided(block=16, stride=4)");
        BlockLayout s = strided.layout(256, 256, 1);
        BlockLayout r = Patterns.parse("random(block=16, blocks=2, seed=3)").layout(256, 256, 1);
        for (int kb = 0; kb < 16; kb++) {
            if (kb != 9 && u.allowed(0, 9, kb)) {
                BlockKind expected = r.allowed(0, 9, kb) ? BlockKind.RANDOM : BlockKind.ALLOWED;
                assertTrue(r.allowed(0, 9, kb) || s.allowed(0, 9, kb));
                assertEquals(expected, unionKinds.of(0, 9, kb), "block 9," + kb);
            }
        }
        PatternSpec dense = Patterns.parse("dense(block=16)");
        assertEquals(BlockKind.ALLOWED, BlockKind.classifier(dense, dense.layout(32, 32, 1), 1).of(0, 0, 1));
    }

    @Test
    void atMostEightHeadsAndLargeLayoutsAreDownsampled() throws Exception {
        PatternSpec spec = Patterns.parse("bigbird(block=64)");
        LayoutImage many = LayoutImage.of(spec, spec.layout(1024, 1024, 12), 12);
        assertEquals(LayoutImage.MAX_PANELS, many.panels());
        assertEquals(4, many.headsLeftOut());
        draw(many);

        BlockLayout big = spec.layout(65_536, 65_536, 1);
        LayoutImage image = LayoutImage.of(spec, big, 1);
        assertEquals(2, image.blocksPerPixel());
        assertEquals("1 pixel = 2 x 2 blocks", image.scale());
        assertEquals(1, image.panels());
        BufferedImage png = draw(image);
        assertTrue(png.getWidth() >= 512 + 48 && png.getHeight() >= 512 + 112, png.getWidth() + "x" + png.getHeight());
        // The window band survives downsampling: the diagonal pixel of block 500 is window green.
        assertEquals(BlockKind.WINDOW.color().getRGB() & 0xffffff, png.getRGB(24 + 250, 112 + 28 + 250) & 0xffffff);
        // So does the global first row, a line one block thin.
        assertEquals(BlockKind.GLOBAL.color().getRGB() & 0xffffff, png.getRGB(24 + 300, 112 + 28) & 0xffffff);
    }
}
