package dev.starling.bench.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.npy.NpyArray;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code starling run --dout --dq --dk --dv}: the backward pass from the tool. */
class RunBackwardTest {

    private static Path save(Path dir, String name, Random random, int... shape) throws Exception {
        int n = 1;
        for (int s : shape) {
            n *= s;
        }
        float[] data = new float[n];
        for (int i = 0; i < n; i++) {
            data[i] = (float) random.nextGaussian();
        }
        Path file = dir.resolve(name + ".npy");
        try (var out = Files.newOutputStream(file)) {
            NpyArray.ofFloats(data, shape).write(out);
        }
        return file;
    }

    @Test
    void writesTheThreeGradientsInTheInputsShapes(@TempDir Path dir) throws Exception {
        Random random = new Random(5);
        Path q = save(dir, "q", random, 1, 4, 40, 8);
        Path k = save(dir, "k", random, 1, 2, 56, 8);
        Path v = save(dir, "v", random, 1, 2, 56, 6);
        Path dout = save(dir, "dout", random, 1, 4, 40, 6);
        StarlingCliTest.Result r = StarlingCliTest.run("run", "--q", q.toString(), "--k", k.toString(), "--v", v.toString(),
                "--pattern", "bigbird(block=8)", "--out", dir.resolve("o.npy").toString(), "--dout", dout.toString(),
                "--dq", dir.resolve("dq.npy").toString(), "--dk", dir.resolve("dk.npy").toString(), "--dv",
                dir.resolve("dv.npy").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("(forward + backward)"), r.out());
        assertArrayEquals(new int[] {1, 4, 40, 8}, NpyArray.read(dir.resolve("dq.npy")).shape());
        assertArrayEquals(new int[] {1, 2, 56, 8}, NpyArray.read(dir.resolve("dk.npy")).shape());
        assertArrayEquals(new int[] {1, 2, 56, 6}, NpyArray.read(dir.resolve("dv.npy")).shape());
    }

    @Test
    void gradientOptionsGoTogetherAndNeverNameAnInput(@TempDir Path dir) throws Exception {
        Random random = new Random(6);
        Path q = save(dir, "q", random, 1, 1, 16, 4);
        Path dout = save(dir, "dout", random, 1, 1, 16, 4);
        StarlingCliTest.Result r = StarlingCliTest.run("run", "--q", q.toString(), "--k", q.toString(), "--v", q.toString(),
                "--pattern", "dense(block=8)", "--out", dir.resolve("o.npy").toString(), "--dout", dout.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--dout, --dq, --dk and --dv go together"), r.err());
        r = StarlingCliTest.run("run", "--q", q.toString(), "--k", q.toString(), "--v", q.toString(), "--pattern",
                "dense(block=8)", "--out", dir.resolve("o.npy").toString(), "--dout", dout.toString(), "--dq",
                dout.toString(), "--dk", dir.resolve("dk.npy").toString(), "--dv", dir.resolve("dv.npy").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--dq") && r.err().contains("same file as --dout"), r.err());
        assertFalse(Files.exists(dir.resolve("o.npy")));
    }
}
