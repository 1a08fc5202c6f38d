package dev.starling.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.npy.NpyArray;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code starling pattern --export flex|bsr|ort --to PREFIX} and reading it back with {@code layout(file=….json)}. */
class PatternExportTest {

    @Test
    void eachFormatIsWrittenAndReadsBackAsTheSameMask(@TempDir Path dir) throws Exception {
        String spec = "bigbird(block=32, window=3, global=1, random=2)";
        StarlingCliTest.Result mask = StarlingCliTest.run("pattern", spec, "--seq", "640", "--heads", "2", "--causal",
                "--npy", dir.resolve("mask.npy").toString());
        assertEquals(0, mask.code(), mask.out() + mask.err());
        for (String format : new String[] {"flex", "bsr", "ort"}) {
            Path prefix = dir.resolve(format);
            StarlingCliTest.Result r = StarlingCliTest.run("pattern", spec, "--seq", "640", "--heads", "2", "--causal",
                    "--export", format, "--to", prefix.toString());
            assertEquals(0, r.code(), r.out() + r.err());
            assertTrue(r.out().contains("wrote " + prefix + ".json for " + format), r.out());
            assertTrue(Files.readString(dir.resolve(format + ".json")).contains("\"causal\": true"));
            Path back = dir.resolve(format + "-back.npy");
            StarlingCliTest.Result again = StarlingCliTest.run("pattern", "layout(file=" + prefix + ".json, block=32)",
                    "--seq", "640", "--heads", "2", "--npy", back.toString());
            assertEquals(0, again.code(), again.out() + again.err());
            assertEquals(NpyArray.read(dir.resolve("mask.npy")), NpyArray.read(back), format);
        }
    }

    @Test
    void refusalsAreOneLineAndWriteNothing(@TempDir Path dir) {
        StarlingCliTest.Result alone = StarlingCliTest.run("pattern", "dense(block=16)", "--seq", "64", "--export", "flex");
        assertEquals(2, alone.code());
        assertTrue(alone.err().contains("--export and --to go together"), alone.err());
        StarlingCliTest.Result format = StarlingCliTest.run("pattern", "dense(block=16)", "--seq", "64", "--export", "csr",
                "--to", dir.resolve("x").toString());
        assertEquals(2, format.code());
        assertTrue(format.err().contains("no layout format 'csr': give flex, bsr or ort"), format.err());
        StarlingCliTest.Result counts = StarlingCliTest.run("pattern", "bigbird_hf(block=16, random=3, mode=eval)", "--seq",
                "1024", "--export", "bsr", "--to", dir.resolve("hf").toString());
        assertEquals(2, counts.code(), counts.out() + counts.err());
        assertTrue(counts.err().contains("no block counts"), counts.err());
        assertFalse(Files.exists(dir.resolve("hf.json")));
    }
}
