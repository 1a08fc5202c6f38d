package dev.starling.api.pattern.numpy;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Reads the vector files {@code make_numpy_vectors.py} writes into this package's test resources. */
public final class GeneratedVectors {
    private GeneratedVectors() {
    }

    /** The lines of a generated vector file, comments dropped, split on spaces. */
    public static List<String[]> lines(String name) throws IOException {
        try (InputStream in = GeneratedVectors.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IOException("test resource " + name + " is missing; run make_numpy_vectors.py");
            }
            List<String[]> lines = new ArrayList<>();
            BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                if (!line.isBlank() && !line.startsWith("#")) {
                    lines.add(line.trim().split(" +"));
                }
            }
            return lines;
        }
    }

    /** @return the integers of {@code fields} from index {@code from} on */
    public static int[] ints(String[] fields, int from) {
        return Arrays.stream(fields, from, fields.length).mapToInt(Integer::parseInt).toArray();
    }
}
