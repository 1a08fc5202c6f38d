package dev.starling.bench.draw;

import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.pattern.CausalPattern;
import dev.starling.api.pattern.PatternSpec;
import dev.starling.api.pattern.UnionPattern;
import java.awt.Color;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Why a block is allowed, by the rule of the pattern that made the layout: a global row or column,
 * the window band, a random draw, or just allowed (patterns that do not tell these apart). Declared
 * in priority order: a block that two rules allow shows as the first.
 */
public enum BlockKind {
    /** A global query block's row or a global key block's column. */
    GLOBAL("global", new Color(0x1f4e99)),
    /** The sliding window around the diagonal. */
    WINDOW("window", new Color(0x2ca02c)),
    /** A random block. */
    RANDOM("random", new Color(0xe8710a)),
    /** Allowed by a pattern that does not say why (dense, fixed, strided, an explicit layout). */
    ALLOWED("allowed", new Color(0x555555));

    private final String label;
    private final Color color;

    BlockKind(String label, Color color) {
        this.label = label;
        this.color = color;
    }

    /** @return the legend's word for it */
    public String label() {
        return label;
    }

    /** @return its colour in pictures */
    public Color color() {
        return color;
    }

    /** Says why an allowed block of one query head's layout is allowed. */
    @FunctionalInterface
    public interface Classifier {
        /**
         * @param head query head
         * @param qb query block
         * @param kb key block, allowed for {@code qb} in the layout that was classified
         * @return its kind
         */
        BlockKind of(int head, int qb, int kb);
    }

    private static final Pattern ARGUMENT = Pattern.compile("(\\w+)=(\\[[^\\]]*\\]|[^,)]+)");

    /**
     * The classifier for a layout made by {@code pattern}. BigBird: global rows and columns (the
     * first {@code ceil(g/2)} and last {@code floor(g/2)} blocks), then the window band
     * {@code |qb − kb| <= w/2}, the rest random. Longformer: its global indices, then its window.
     * {@code window}, {@code global} and {@code random} are one kind each; {@code causal(P)} is
     * {@code P}'s; a union gives each block the first kind among the parts that allow it. Any other
     * pattern: {@link #ALLOWED}.
     *
     * @param pattern the pattern. Not modified.
     * @param layout the layout it made, for the block counts (and, for a union, the parts' layouts). Not modified.
     * @param heads query heads the layout was built for
     * @return the classifier
     */
    public static Classifier classifier(PatternSpec pattern, BlockLayout layout, int heads) {
        if (pattern instanceof CausalPattern c) {
            return classifier(c.inner(), layout, heads);
        }
        if (pattern instanceof UnionPattern u) {
            List<BlockLayout> layouts = new ArrayList<>();
            List<Classifier> parts = new ArrayList<>();
            for (PatternSpec part : u.parts()) {
                BlockLayout l = part.layout(layout.queryLength(), layout.keyLength(), heads, layout.causal());
                layouts.add(l);
                parts.add(classifier(part, l, heads));
            }
            return (h, qb, kb) -> {
                BlockKind best = ALLOWED;
                for (int i = 0; i < parts.size(); i++) {
                    if (layouts.get(i).allowed(h, qb, kb)) {
                        BlockKind k = parts.get(i).of(h, qb, kb);
                        best = k.ordinal() < best.ordinal() ? k : best;
                    }
                }
                return best;
            };
        }
        String text = pattern.text();
        int open = text.indexOf('(');
        String name = open < 0 ? text : text.substring(0, open).strip().toLowerCase(Locale.ROOT);
        Map<String, String> args = arguments(open < 0 ? "" : text.substring(open));
        int qBlocks = layout.queryBlocks();
        int kBlocks = layout.keyBlocks();
        try {
            switch (name) {
                case "bigbird": {
                    int global = Integer.parseInt(args.get("global"));
                    int first = (global + 1) / 2;
                    int last = global / 2;
                    int half = Integer.parseInt(args.get("window")) / 2;
                    return (h, qb, kb) -> qb < first || qb >= qBlocks - last || kb < first || kb >= kBlocks - last ? GLOBAL
                            : Math.abs((long) qb - kb) <= half ? WINDOW : RANDOM;
                }
                case "longformer": {
                    int half = Integer.parseInt(args.get("window")) / 2;
                    boolean[] globalRow = new boolean[qBlocks];
                    boolean[] globalColumn = new boolean[kBlocks];
                    String list = args.get("global").replaceAll("[\\[\\]\\s]", "");
                    for (String g : list.isEmpty() ? new String[0] : list.split(",")) {
                        int i = Integer.parseInt(g);
                        mark(globalRow, i < 0 ? qBlocks + i : i);
                        mark(globalColumn, i < 0 ? kBlocks + i : i);
                    }
                    return (h, qb, kb) -> globalRow[qb] || globalColumn[kb] ? GLOBAL
                            : Math.abs((long) qb - kb) <= half ? WINDOW : ALLOWED;
                }
                case "window":
                    return (h, qb, kb) -> WINDOW;
                case "global":
                    return (h, qb, kb) -> GLOBAL;
                case "random":
                    return (h, qb, kb) -> RANDOM;
                default:
                    return (h, qb, kb) -> ALLOWED;
            }
        } catch (RuntimeException e) {
            // A provider's pattern that shares a built-in's name but not its arguments: no colours, no failure.
            return (h, qb, kb) -> ALLOWED;
        }
    }

    private static void mark(boolean[] flags, int i) {
        if (i >= 0 && i < flags.length) {
            flags[i] = true;
        }
    }

    /** {@code "(block=64, window=3, global=[0, -1])"} as a map from argument name to value text. */
    private static Map<String, String> arguments(String text) {
        Map<String, String> args = new TreeMap<>();
        Matcher m = ARGUMENT.matcher(text);
        while (m.find()) {
            args.put(m.group(1).toLowerCase(Locale.ROOT), m.group(2).strip());
        }
        return args;
    }
}
