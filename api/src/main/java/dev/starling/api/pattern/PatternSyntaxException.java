package dev.starling.api.pattern;

/**
 * Bad pattern text: says where (a 0-based character position, shown with a caret) and what
 * was expected, including the expected form of the pattern when the name is known.
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

    private static String format(String text, int position, String problem, String form) {
        StringBuilder sb = new StringBuilder();
        sb.append("bad pattern at position ").append(position).append(": ").append(problem);
        sb.append("\n  ").append(text).append("\n  ").append(" ".repeat(Math.max(0, position))).append('^');
        if (form != null) {
            sb.append("\n  expected form: ").append(form);
        }
        return sb.toString();
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
