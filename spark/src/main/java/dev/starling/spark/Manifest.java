package dev.starling.spark;

import java.io.BufferedReader;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The job's manifest, read with a fixed schema: JSON Lines, one object per line, each one
 * sequence, with exactly the fields of {@link #FIELDS} (blank lines are skipped):
 *
 * <ul>
 *   <li>{@code id}, {@code q}, {@code k}, {@code v}, {@code out}: strings, required;</li>
 *   <li>{@code lse}: a string, optional;</li>
 *   <li>{@code key_lengths}, {@code query_lengths}: arrays of integers, optional.</li>
 * </ul>
 *
 * A field not in the schema (a misspelling such as {@code "key_length"}), a {@code null}, a
 * field given twice, a value of the wrong type, a number that is not an integer in {@code int}
 * range, and anything that is not JSON are refused with the line and column, so nothing in the
 * manifest is ever silently ignored. The manifest is one file: a folder is refused.
 */
final class Manifest {
    /** The schema's fields, in the order messages list them. */
    static final List<String> FIELDS = List.of("id", "q", "k", "v", "out", "lse", "key_lengths", "query_lengths");
    private static final List<String> REQUIRED = List.of("id", "q", "k", "v", "out");

    private Manifest() {
    }

    /**
     * Reads a manifest file.
     *
     * @param conf resolves the path's file system
     * @param path the file
     * @return the sequences, in file order
     * @throws IOException naming the file, if it is missing, a folder, unreadable or not UTF-8
     * @throws IllegalArgumentException naming the file, line and column of what breaks the schema
     */
    static List<Sequence> read(Configuration conf, String path) throws IOException {
        Path p;
        try {
            p = new Path(path);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--manifest '" + path + "' is not a path Hadoop can read: " + rootMessage(e));
        }
        FileSystem fs = p.getFileSystem(conf);
        FileStatus status;
        try {
            status = fs.getFileStatus(p);
        } catch (FileNotFoundException e) {
            throw new IOException("manifest " + path + ": no such file");
        }
        if (status.isDirectory()) {
            throw new IOException("manifest " + path + ": is a folder; give one JSON Lines file");
        }
        List<Sequence> sequences = new ArrayList<>();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(fs.open(p), StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT)))) {
            int number = 0;
            for (String line; (line = in.readLine()) != null; ) {
                number++;
                if (!line.isBlank()) {
                    sequences.add(parse(line, path + " line " + number));
                }
            }
        } catch (CharacterCodingException e) {
            throw new IOException("manifest " + path + ": not UTF-8 text");
        }
        if (sequences.isEmpty()) {
            throw new IllegalArgumentException("manifest " + path + ": no sequences (one JSON object per line)");
        }
        return sequences;
    }

    /**
     * Parses one line.
     *
     * @param line the line
     * @param where {@code "FILE line N"}, for messages
     * @return its sequence
     * @throws IllegalArgumentException naming {@code where}, the column and what is wrong
     */
    static Sequence parse(String line, String where) {
        Map<String, Object> fields = new Reader(line, where).object();
        for (String f : REQUIRED) {
            if (!fields.containsKey(f)) {
                throw new IllegalArgumentException("manifest " + where + ": no \"" + f + "\" (required: " + String.join(", ", REQUIRED) + ")");
            }
        }
        try {
            return new Sequence((String) fields.get("id"), (String) fields.get("q"), (String) fields.get("k"),
                    (String) fields.get("v"), (String) fields.get("out"), (String) fields.get("lse"),
                    (int[]) fields.get("key_lengths"), (int[]) fields.get("query_lengths"));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("manifest " + where + ": " + e.getMessage(), e);
        }
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null) {
            t = t.getCause();
        }
        return t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
    }

    /** A reader of one JSON object of the schema's shape; positions in messages count from 1. */
    private static final class Reader {
        private final String s;
        private final String where;
        private int at;

        Reader(String s, String where) {
            this.s = s;
            this.where = where;
        }

        Map<String, Object> object() {
            Map<String, Object> fields = new HashMap<>();
            space();
            expect('{', "a JSON object, one per line");
            space();
            if (peek() == '}') {
                at++;
            } else {
                while (true) {
                    space();
                    int keyAt = at;
                    if (peek() != '"') {
                        throw error("expected a field name in double quotes");
                    }
                    String key = string();
                    space();
                    expect(':', "':' after the field name");
                    space();
                    if (!FIELDS.contains(key)) {
                        at = keyAt;
                        throw error("unknown field \"" + key + "\" (the fields are " + String.join(", ", FIELDS) + ")");
                    }
                    if (fields.containsKey(key)) {
                        at = keyAt;
                        throw error("\"" + key + "\" is given twice");
                    }
                    fields.put(key, key.endsWith("_lengths") ? ints(key) : text(key));
                    space();
                    char c = peek();
                    at++;
                    if (c == '}') {
                        break;
                    }
                    if (c != ',') {
                        at--;
                        throw error("expected ',' or '}'");
                    }
                }
            }
            space();
            if (at < s.length()) {
                throw error("text after the object (one object per line)");
            }
            return fields;
        }

        private String text(String key) {
            if (peek() != '"') {
                throw error("\"" + key + "\" must be a string" + (startsNull() ? ", not null (leave the field out instead)" : ""));
            }
            return string();
        }

        private int[] ints(String key) {
            if (peek() != '[') {
                throw error("\"" + key + "\" must be an array of integers" + (startsNull() ? ", not null (leave the field out instead)" : ""));
            }
            at++;
            List<Integer> values = new ArrayList<>();
            space();
            if (peek() == ']') {
                at++;
            } else {
                while (true) {
                    space();
                    values.add(integer(key, values.size()));
                    space();
                    char c = peek();
                    at++;
                    if (c == ']') {
                        break;
                    }
                    if (c != ',') {
                        at--;
                        throw error("expected ',' or ']' in \"" + key + "\"");
                    }
                }
            }
            return values.stream().mapToInt(Integer::intValue).toArray();
        }

        private int integer(String key, int index) {
            int start = at;
            if (peek() == '-') {
                at++;
            }
            while (at < s.length() && s.charAt(at) >= '0' && s.charAt(at) <= '9') {
                at++;
            }
            boolean digits = at > start + (s.charAt(start) == '-' ? 1 : 0);
            char next = peek();
            if (!digits || next == '.' || next == 'e' || next == 'E') {
                at = start;
                throw error("\"" + key + "\"[" + index + "] must be an integer" + (startsNull() ? ", not null" : ""));
            }
            String number = s.substring(start, at);
            try {
                return Integer.parseInt(number);
            } catch (NumberFormatException e) {
                at = start;
                throw error("\"" + key + "\"[" + index + "] = " + number + " is outside the int range");
            }
        }

        private String string() {
            at++; // the opening quote
            StringBuilder sb = new StringBuilder();
            while (true) {
                if (at >= s.length()) {
                    throw error("unterminated string");
                }
                char c = s.charAt(at++);
                if (c == '"') {
                    return sb.toString();
                }
                if (c < 0x20) {
                    at--;
                    throw error("a control character in a string (write it as an escape)");
                }
                if (c != '\\') {
                    sb.append(c);
                    continue;
                }
                char e = at < s.length() ? s.charAt(at++) : 0;
                switch (e) {
                    case '"', '\\', '/' -> sb.append(e);
                    case 'b' -> sb.append('\b');
                    case 'f' -> sb.append('\f');
                    case 'n' -> sb.append('\n');
                    case 'r' -> sb.append('\r');
                    case 't' -> sb.append('\t');
                    case 'u' -> {
                        if (at + 4 > s.length()) {
                            throw error("a \\u escape needs four hex digits");
                        }
                        int v = 0;
                        for (int i = 0; i < 4; i++) {
                            int d = Character.digit(s.charAt(at + i), 16);
                            if (d < 0 || s.charAt(at + i) > 'f') {
                                throw error("a \\u escape needs four hex digits");
                            }
                            v = v * 16 + d;
                        }
                        at += 4;
                        sb.append((char) v);
                    }
                    default -> {
                        at--;
                        throw error("unknown escape '\\" + e + "' in a string");
                    }
                }
            }
        }

        private boolean startsNull() {
            return s.startsWith("null", at);
        }

        private void expect(char c, String what) {
            if (peek() != c) {
                throw error("expected " + what);
            }
            at++;
        }

        private char peek() {
            return at < s.length() ? s.charAt(at) : 0;
        }

        private void space() {
            while (at < s.length() && (s.charAt(at) == ' ' || s.charAt(at) == '\t' || s.charAt(at) == '\r')) {
                at++;
            }
        }

        private IllegalArgumentException error(String what) {
            return new IllegalArgumentException("manifest " + where + ", column " + (at + 1) + ": " + what);
        }
    }
}
