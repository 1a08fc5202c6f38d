package dev.starling.api.npy;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The header dictionary of a {@code .npy} file, parsed as the Python literal it is (NumPy reads it
 * with {@code ast.literal_eval}), not searched with patterns: a dictionary with exactly the keys
 * {@code 'descr'} (a string), {@code 'fortran_order'} ({@code True} or {@code False}) and
 * {@code 'shape'} (a tuple of non-negative integers), in any order, optionally followed by a
 * trailing comma, then only spaces and a newline. NumPy refuses a header with a missing or extra
 * key; Starling also refuses a key given twice (NumPy would silently take the last one), so a
 * smuggled {@code 'descr'} can never change how the data is read.
 *
 * @param descr the dtype string, e.g. {@code "<f4"}
 * @param fortranOrder whether the data is in Fortran order
 * @param shape the dimensions
 */
record NpyHeader(String descr, boolean fortranOrder, int[] shape) {

    /**
     * Parses a header.
     *
     * @param text the header text after the length field
     * @param name the file name for messages
     * @return the header
     * @throws NpyFormatException naming the file, the position and what was expected
     */
    static NpyHeader parse(String text, String name) throws NpyFormatException {
        return new Parser(text, name).header();
    }

    private static final class Parser {
        private final String text;
        private final String name;
        private int at;

        Parser(String text, String name) {
            this.text = text;
            this.name = name;
        }

        NpyHeader header() throws NpyFormatException {
            Map<String, Object> dict = new LinkedHashMap<>();
            expect('{');
            while (!peek('}')) {
                int keyAt = at;
                String key = string();
                expect(':');
                Object value = value();
                if (dict.put(key, value) != null) {
                    throw error(keyAt, "key '" + key + "' appears twice");
                }
                if (!peek('}')) {
                    expect(',');
                }
            }
            expect('}');
            skipSpace();
            if (at != text.length()) {
                throw error(at, "unexpected text after the header dictionary");
            }
            if (!dict.keySet().equals(java.util.Set.of("descr", "fortran_order", "shape"))) {
                throw new NpyFormatException(name + ": header must have exactly the keys 'descr', 'fortran_order' and "
                        + "'shape', found " + dict.keySet());
            }
            if (!(dict.get("descr") instanceof String descr)) {
                throw new NpyFormatException(name + ": header 'descr' must be a string (Starling reads simple dtypes)");
            }
            if (!(dict.get("fortran_order") instanceof Boolean fortran)) {
                throw new NpyFormatException(name + ": header 'fortran_order' must be True or False");
            }
            if (!(dict.get("shape") instanceof int[] shape)) {
                throw new NpyFormatException(name + ": header 'shape' must be a tuple of integers");
            }
            return new NpyHeader(descr, fortran, shape);
        }

        private Object value() throws NpyFormatException {
            skipSpace();
            if (at >= text.length()) {
                throw error(at, "a value");
            }
            char c = text.charAt(at);
            if (c == '\'' || c == '"') {
                return string();
            }
            if (c == '(') {
                return tuple();
            }
            if (text.startsWith("True", at)) {
                at += 4;
                return Boolean.TRUE;
            }
            if (text.startsWith("False", at)) {
                at += 5;
                return Boolean.FALSE;
            }
            throw error(at, "a string, True, False or a tuple of integers");
        }

        private String string() throws NpyFormatException {
            skipSpace();
            if (at >= text.length() || (text.charAt(at) != '\'' && text.charAt(at) != '"')) {
                throw error(at, "a quoted string");
            }
            char quote = text.charAt(at++);
            int start = at;
            while (at < text.length() && text.charAt(at) != quote) {
                if (text.charAt(at) == '\\') {
                    throw error(at, "a string without escapes");
                }
                at++;
            }
            if (at >= text.length()) {
                throw error(start - 1, "a closing " + quote);
            }
            return text.substring(start, at++);
        }

        private int[] tuple() throws NpyFormatException {
            expect('(');
            List<Integer> dims = new ArrayList<>();
            while (!peek(')')) {
                skipSpace();
                int start = at;
                while (at < text.length() && isAsciiDigit(text.charAt(at))) {
                    at++;
                }
                if (start == at) {
                    throw error(start, "a non-negative integer dimension");
                }
                long dim = Long.parseLong(text.substring(start, Math.min(at, start + 12)));
                if (at - start > 10 || dim > Integer.MAX_VALUE) {
                    throw error(start, "a dimension below 2^31");
                }
                if (at < text.length() && text.charAt(at) == 'L') {
                    at++; // Python 2 long literal, as old NumPy wrote it
                }
                dims.add((int) dim);
                if (!peek(')')) {
                    expect(',');
                }
            }
            expect(')');
            return dims.stream().mapToInt(Integer::intValue).toArray();
        }

        private boolean peek(char c) {
            skipSpace();
            return at < text.length() && text.charAt(at) == c;
        }

        private void expect(char c) throws NpyFormatException {
            if (!peek(c)) {
                throw error(at, "'" + c + "'");
            }
            at++;
        }

        private void skipSpace() {
            while (at < text.length() && Character.isWhitespace(text.charAt(at))) {
                at++;
            }
        }

        private NpyFormatException error(int position, String expected) {
            String shown = text.length() > 200 ? text.substring(0, 200) + "…" : text;
            return new NpyFormatException(name + ": corrupt header at character " + position + " (expected " + expected
                    + "): " + shown.strip());
        }
    }

    /** {@code 0} to {@code 9} only: {@link Character#isDigit} also takes Arabic-Indic and other digits, which {@code parseLong} reads. */
    private static boolean isAsciiDigit(char c) {
        return c >= '0' && c <= '9';
    }
}
