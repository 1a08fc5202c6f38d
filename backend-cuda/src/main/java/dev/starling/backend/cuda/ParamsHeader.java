package dev.starling.backend.cuda;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Writes {@code params.cuh} ({@link KernelParams#header()}) for the kernel build: run by Maven before
 * nvcc, so the C struct and the Java offsets come from one list. Leaves an up-to-date file untouched
 * (nvcc is not re-run for nothing); writes through a temporary file, so no half header is ever seen.
 * Public only so that the build can run it; not part of any API.
 */
public final class ParamsHeader {
    private ParamsHeader() {
    }

    /**
     * @param args one argument: the header's path
     * @throws IOException if it cannot be written
     */
    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            throw new IllegalArgumentException("usage: ParamsHeader OUTPUT.cuh");
        }
        Path out = Path.of(args[0]);
        String text = KernelParams.header();
        if (Files.isRegularFile(out) && Files.readString(out, StandardCharsets.UTF_8).equals(text)) {
            return;
        }
        Files.createDirectories(out.toAbsolutePath().getParent());
        Path tmp = out.resolveSibling(out.getFileName() + ".tmp");
        Files.writeString(tmp, text, StandardCharsets.UTF_8);
        Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
