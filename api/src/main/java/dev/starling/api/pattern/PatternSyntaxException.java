package dev.starling.api.pattern;

/**
 * Bad pattern text: says where (a 0-based character position, shown with a caret) and what
 * was expected, including the expected form of the pattern when the name is known. The message
 * echoes only a window of the text around the position, so a huge text is never repeated whole;
 * {@link #text()} keeps all of it.
 */
public final class PatternSyntaxException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    private final String text;
    private final int position;

    /**
     * @param text the whole pattern text
     * @param position 0-based position of the problem
     * @param problem what is wrong and what was expected
     * @param form the expected form, or {@code null}
     */
    public PatternSyntaxException(String text, int position, String problem, String form) {
        super(format(text, position, problem, form));
        this.text = text;
        this.position = position;
    }

    /** Characters of the text shown on each side of the error position. */
    static final int ECHO_RADIUS = 60;
    /** Longest problem description kept whole; a longer one (it may quote the text) keeps its start and end. */
    static final int MAX_PROBLEM = 1500;

    /**
     * The message: the problem, then the text around the position (at most {@value #ECHO_RADIUS}
     * characters each side, "…" where it was cut, control characters shown as spaces) with a
     * caret under the character at the position.
     */
    private static String format(String whole, int position, String problem, String form) {
        String text = whole == null ? "" : whole;
        StringBuilder sb = new StringBuilder();
        sb.append("bad pattern at position ").append(position).append(": ").append(clip(problem));
        int at = Math.max(0, Math.min(position, text.length()));
        int from = Math.max(0, at - ECHO_RADIUS);
        int to = Math.min(text.length(), at + ECHO_RADIUS + 1);
        // Never split a surrogate pair at either end of the window.
        if (from > 0 && Character.isLowSurrogate(text.charAt(from))) {
            from--;
        }
        if (to < text.length() && Character.isLowSurrogate(text.charAt(to))) {
            to++;
        }
        String lead = from > 0 ? "…" : "";
        sb.append("\n  ").append(lead);
        for (int i = from; i < to; i++) {
            char c = text.charAt(i);
            sb.append(Character.isISOControl(c) ? ' ' : c);
        }
        sb.append(to < text.length() ? "…" : "");
        sb.append("\n  ").append(" ".repeat(lead.length() + (at - from))).append('^');
        if (form != null) {
            sb.append("\n  expected form: ").append(form);
        }
        return sb.toString();
    }

    /** The problem on one line (control characters it quotes from the text escaped), start and end kept. */
    private static String clip(String problem) {
        if (problem == null) {
            return null;
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < problem.length(); i++) {
            char c = problem.charAt(i);
            switch (c) {
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> sb.append(Character.isISOControl(c) ? String.format("\\u%04x", (int) c) : String.valueOf(c));
            }
        }
        String line = sb.toString();
        if (line.length() <= MAX_PROBLEM) {
            return line;
        }
        int tail = MAX_PROBLEM / 2;
        return line.substring(0, MAX_PROBLEM - tail - 1) + "…" + line.substring(line.length() - tail);
    }

    /** @return the pattern text */
    public String text() {
        return text;
    }

    /** @return the 0-based position of the problem */
    public int position() {
        return position;
    }
}
