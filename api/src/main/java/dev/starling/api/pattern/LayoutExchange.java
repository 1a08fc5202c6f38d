package dev.starling.api.pattern;

import dev.starling.api.npy.NpyArray;
import dev.starling.api.plan.TokenMask;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A block layout as the arrays other libraries take, and back: the same key block sets, row by row and
 * head by head, in every format.
 *
 * <ul>
 *   <li>{@link Format#FLEX}: PyTorch FlexAttention's {@code BlockMask} tensors ({@code BlockMask.from_kv_blocks}):
 *       {@code kv_num_blocks} and {@code kv_indices} for the <em>partial</em> blocks (those the causal rule
 *       cuts: the mask_mod must run there) and {@code full_kv_num_blocks} and {@code full_kv_indices} for
 *       the blocks whose every pair is allowed; int32, shapes {@code [1, H, Qb]} and {@code [1, H, Qb, Kb]}
 *       (batch 1 broadcasts); each row's first {@code num} indices are its blocks in ascending order, the
 *       rest of the row is 0. Without causal every block is full and {@code kv_num_blocks} is 0.</li>
 *   <li>{@link Format#BSR}: SciPy's block-sparse rows per head: {@code indptr [H, Qb + 1]} (offsets into
 *       the head's row of {@code indices}) and {@code indices [H, maxNnz]}, padded with −1.</li>
 *   <li>{@link Format#ORT}: ONNX Runtime's {@code com.microsoft.SparseAttention} CSR inputs
 *       {@code block_row_indices [H, Qb + 1]} and {@code block_col_indices [H, maxNnz]} (padded with −1),
 *       one layout per head ({@code num_layout = H}).</li>
 * </ul>
 * A layout with block counts above 1 has no equivalent in these formats and is refused. The lengths,
 * block sizes, head count and causal flag travel in a small JSON file beside the arrays
 * ({@link #write}, {@link #read}).
 */
public final class LayoutExchange {

    /** The formats. */
    public enum Format {
        /** FlexAttention {@code BlockMask}: partial and full blocks. */
        FLEX("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices"),
        /** SciPy BSR: {@code indptr}, {@code indices}. */
        BSR("indptr", "indices"),
        /** ONNX Runtime SparseAttention CSR: {@code block_row_indices}, {@code block_col_indices}. */
        ORT("block_row_indices", "block_col_indices");

        private final List<String> arrays;

        Format(String... arrays) {
            this.arrays = List.of(arrays);
        }

        /** @return the names of the format's arrays, in the order {@link #export} returns them */
        public List<String> arrays() {
            return arrays;
        }

        /** @return the lower-case name ({@code flex}, {@code bsr}, {@code ort}) */
        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }

        /**
         * @param text {@code flex}, {@code bsr} or {@code ort}, any case
         * @return the format
         * @throws IllegalArgumentException for any other text
         */
        public static Format parse(String text) {
            for (Format f : values()) {
                if (f.label().equals(text.strip().toLowerCase(Locale.ROOT))) {
                    return f;
                }
            }
            throw new IllegalArgumentException("no layout format '" + text + "': give flex, bsr or ort");
        }
    }

    /**
     * One exported int32 array.
     *
     * @param name its name in the format (e.g. {@code kv_indices})
     * @param values C-order values
     * @param shape its dimensions
     */
    public record Array(String name, int[] values, int[] shape) {
    }

    private LayoutExchange() {
    }

    /**
     * The layout's arrays in {@code format}, for {@code heads} query heads.
     *
     * @param layout the layout. Not modified.
     * @param heads query heads: {@code 1} or the layout's own count for per-head layouts, any count for a shared one
     * @param format the format
     * @return the arrays, in {@link Format#arrays()} order
     * @throws IllegalArgumentException for a layout with block counts above 1, or a head count the layout does not fit
     */
    public static List<Array> export(BlockLayout layout, int heads, Format format) {
        if (layout.maxCount() > 1) {
            throw new IllegalArgumentException("the layout counts some blocks " + layout.maxCount() + " times; "
                    + format.label() + " holds block sets only (no block counts)");
        }
        if (heads < 1 || (!layout.isShared() && layout.heads() != heads)) {
            throw new IllegalArgumentException("the layout has " + layout.heads() + " per-head layouts but " + heads
                    + " heads were asked for");
        }
        int qb = layout.queryBlocks();
        int kb = layout.keyBlocks();
        return switch (format) {
            case FLEX -> {
                int[] partialNum = new int[heads * qb];
                int[] partialIdx = new int[heads * qb * kb];
                int[] fullNum = new int[heads * qb];
                int[] fullIdx = new int[heads * qb * kb];
                for (int h = 0; h < heads; h++) {
                    for (int r = 0; r < qb; r++) {
                        int row = h * qb + r;
                        for (int p = layout.rowBegin(h, r); p < layout.rowEnd(h, r); p++) {
                            int c = layout.keyBlock(h, p);
                            if (full(layout, r, c)) {
                                fullIdx[row * kb + fullNum[row]++] = c;
                            } else {
                                partialIdx[row * kb + partialNum[row]++] = c;
                            }
                        }
                    }
                }
                yield List.of(new Array("kv_num_blocks", partialNum, new int[] {1, heads, qb}),
                        new Array("kv_indices", partialIdx, new int[] {1, heads, qb, kb}),
                        new Array("full_kv_num_blocks", fullNum, new int[] {1, heads, qb}),
                        new Array("full_kv_indices", fullIdx, new int[] {1, heads, qb, kb}));
            }
            case BSR, ORT -> {
                int most = 0;
                for (int h = 0; h < heads; h++) {
                    most = Math.max(most, layout.rowEnd(h, qb - 1) - layout.rowBegin(h, 0));
                }
                int[] ptr = new int[heads * (qb + 1)];
                int[] idx = new int[heads * Math.max(most, 1)];
                Arrays.fill(idx, -1);
                for (int h = 0; h < heads; h++) {
                    int n = 0;
                    for (int r = 0; r < qb; r++) {
                        ptr[h * (qb + 1) + r] = n;
                        for (int p = layout.rowBegin(h, r); p < layout.rowEnd(h, r); p++) {
                            idx[h * Math.max(most, 1) + n++] = layout.keyBlock(h, p);
                        }
                    }
                    ptr[h * (qb + 1) + qb] = n;
                }
                yield List.of(new Array(format.arrays().get(0), ptr, new int[] {heads, qb + 1}),
                        new Array(format.arrays().get(1), idx, new int[] {heads, Math.max(most, 1)}));
            }
        };
    }

    /**
     * Whether every pair of block {@code (r, c)} is allowed by the causal rule of {@code layout} (always
     * true without causal): its first row reaches the block's last key. Tail blocks count as full: their
     * missing tokens are outside the sequence, not masked.
     */
    private static boolean full(BlockLayout layout, int r, int c) {
        if (!layout.causal()) {
            return true;
        }
        int firstRow = r * layout.queryBlock();
        int blockEnd = Math.min((c + 1) * layout.keyBlock(), layout.keyLength());
        long shift = TokenMask.bottomRightShift(layout.queryLength(), layout.keyLength());
        return TokenMask.causalKeyEnd(firstRow, shift, layout.keyLength()) >= blockEnd;
    }

    /**
     * The layout the arrays describe: the inverse of {@link #export}.
     *
     * @param format the format
     * @param arrays the format's arrays by name ({@link Format#arrays()}). Not modified.
     * @param queryLength {@code Nq}
     * @param keyLength {@code Nk}
     * @param queryBlock query block size
     * @param keyBlock key block size
     * @param causal whether the layout applies the causal rule
     * @return a per-head layout (one head layout per exported head)
     * @throws IllegalArgumentException naming the array, head and row for a missing array, a wrong shape, an
     *         index out of range, a block listed twice, or rows out of order
     */
    public static BlockLayout fromArrays(Format format, Map<String, Array> arrays, int queryLength, int keyLength,
                                         int queryBlock, int keyBlock, boolean causal) {
        for (String name : format.arrays()) {
            if (!arrays.containsKey(name)) {
                throw new IllegalArgumentException(format.label() + " layout: array '" + name + "' is missing");
            }
        }
        int qb = ceilDiv(queryLength, queryBlock);
        int kb = ceilDiv(keyLength, keyBlock);
        List<int[][]> rows = new ArrayList<>();
        if (format == Format.FLEX) {
            Array pn = arrays.get("kv_num_blocks");
            int heads = rank(pn, 3)[1];
            expect(pn, 1, heads, qb);
            expect(arrays.get("kv_indices"), 1, heads, qb, kb);
            expect(arrays.get("full_kv_num_blocks"), 1, heads, qb);
            expect(arrays.get("full_kv_indices"), 1, heads, qb, kb);
            for (int h = 0; h < heads; h++) {
                int[][] blocks = new int[qb][];
                for (int r = 0; r < qb; r++) {
                    int[] partial = take(arrays.get("kv_num_blocks"), arrays.get("kv_indices"), h * qb + r, kb, h, r);
                    int[] full = take(arrays.get("full_kv_num_blocks"), arrays.get("full_kv_indices"), h * qb + r, kb, h, r);
                    int[] all = new int[partial.length + full.length];
                    System.arraycopy(partial, 0, all, 0, partial.length);
                    System.arraycopy(full, 0, all, partial.length, full.length);
                    Arrays.sort(all);
                    blocks[r] = all;
                }
                rows.add(blocks);
            }
        } else {
            Array ptr = arrays.get(format.arrays().get(0));
            Array idx = arrays.get(format.arrays().get(1));
            int heads = rank(ptr, 2)[0];
            expect(ptr, heads, qb + 1);
            int width = rank(idx, 2)[1];
            expect(idx, heads, width);
            for (int h = 0; h < heads; h++) {
                int[][] blocks = new int[qb][];
                for (int r = 0; r < qb; r++) {
                    int from = ptr.values()[h * (qb + 1) + r];
                    int to = ptr.values()[h * (qb + 1) + r + 1];
                    if (from < 0 || to < from || to > width) {
                        throw new IllegalArgumentException(format.label() + " layout: " + ptr.name() + "[" + h + "] row "
                                + r + " runs from " + from + " to " + to + ", outside [0, " + width + "] or backwards");
                    }
                    blocks[r] = Arrays.copyOfRange(idx.values(), h * width + from, h * width + to);
                }
                rows.add(blocks);
            }
        }
        int[][] rowStart = new int[rows.size()][];
        int[][] keyBlocks = new int[rows.size()][];
        for (int h = 0; h < rows.size(); h++) {
            int[][] blocks = rows.get(h);
            rowStart[h] = new int[qb + 1];
            int n = 0;
            for (int r = 0; r < qb; r++) {
                rowStart[h][r] = n;
                n += blocks[r].length;
            }
            rowStart[h][qb] = n;
            keyBlocks[h] = new int[n];
            for (int r = 0; r < qb; r++) {
                System.arraycopy(blocks[r], 0, keyBlocks[h], rowStart[h][r], blocks[r].length);
            }
        }
        return BlockLayout.ofCsr(queryLength, keyLength, queryBlock, keyBlock, causal, rowStart, keyBlocks);
    }

    /** The first {@code num[row]} entries of {@code indices}' row. */
    private static int[] take(Array num, Array indices, int row, int kb, int h, int r) {
        int n = num.values()[row];
        if (n < 0 || n > kb) {
            throw new IllegalArgumentException("flex layout: " + num.name() + " at head " + h + ", row " + r + " is " + n
                    + ", outside [0, " + kb + "]");
        }
        return Arrays.copyOfRange(indices.values(), row * kb, row * kb + n);
    }

    private static int[] rank(Array a, int rank) {
        if (a.shape().length != rank) {
            throw new IllegalArgumentException("layout array " + a.name() + " has shape " + Arrays.toString(a.shape())
                    + " but must have rank " + rank);
        }
        return a.shape();
    }

    private static void expect(Array a, int... shape) {
        if (!Arrays.equals(a.shape(), shape)) {
            throw new IllegalArgumentException("layout array " + a.name() + " has shape " + Arrays.toString(a.shape())
                    + " but the lengths and block sizes need " + Arrays.toString(shape));
        }
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        if (a.values().length != n) {
            throw new IllegalArgumentException("layout array " + a.name() + " holds " + a.values().length
                    + " values but its shape " + Arrays.toString(shape) + " needs " + n);
        }
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    // ---------------------------------------------------------------- files

    /**
     * The files {@link #write} makes for {@code prefix}: {@code prefix.json}, then {@code prefix.NAME.npy}
     * per array of the format.
     *
     * @param prefix path prefix, e.g. {@code out/mask}
     * @param format the format
     * @return the paths, the JSON first
     */
    public static List<Path> files(Path prefix, Format format) {
        List<Path> out = new ArrayList<>();
        out.add(sibling(prefix, ".json"));
        for (String name : format.arrays()) {
            out.add(sibling(prefix, "." + name + ".npy"));
        }
        return out;
    }

    private static Path sibling(Path prefix, String suffix) {
        return prefix.resolveSibling(prefix.getFileName() + suffix);
    }

    /**
     * The description file's text: format, lengths, block sizes, heads and causal flag, and the array files.
     *
     * @param layout the layout
     * @param heads heads exported
     * @param format the format
     * @param prefix the path prefix (only its file name is written: the arrays lie beside the JSON)
     * @return the JSON text
     */
    public static String describe(BlockLayout layout, int heads, Format format, Path prefix) {
        StringBuilder files = new StringBuilder();
        for (String name : format.arrays()) {
            files.append(files.length() == 0 ? "" : ", ").append('"').append(name).append("\": \"")
                    .append(prefix.getFileName()).append('.').append(name).append(".npy\"");
        }
        return String.format(Locale.ROOT, "{\"format\": \"%s\", \"q_len\": %d, \"kv_len\": %d, \"q_block\": %d, "
                        + "\"kv_block\": %d, \"heads\": %d, \"causal\": %s, \"arrays\": {%s}}%n", format.label(),
                layout.queryLength(), layout.keyLength(), layout.queryBlock(), layout.keyBlock(), heads, layout.causal(),
                files);
    }

    /**
     * Writes the layout in {@code format}: {@link #files}, plainly (a tool that must never leave half a set
     * stages {@link #describe} and the {@link #export}ed arrays itself).
     *
     * @param layout the layout
     * @param heads heads to export
     * @param format the format
     * @param prefix path prefix
     * @throws IOException if a file cannot be written
     */
    public static void write(BlockLayout layout, int heads, Format format, Path prefix) throws IOException {
        List<Path> paths = files(prefix, format);
        List<Array> arrays = export(layout, heads, format);
        Files.writeString(paths.get(0), describe(layout, heads, format, prefix), StandardCharsets.UTF_8);
        for (int i = 0; i < arrays.size(); i++) {
            NpyArray.ofInts(arrays.get(i).values(), arrays.get(i).shape()).write(paths.get(i + 1));
        }
    }

    private static final Pattern FIELD = Pattern.compile("\"(format|q_len|kv_len|q_block|kv_block|heads|causal)\"\\s*:\\s*"
            + "(\"[a-z]+\"|[0-9]+|true|false)");

    /**
     * Reads a layout {@link #write} wrote: the JSON description and the arrays beside it (by their names
     * in the format, {@code PREFIX.NAME.npy}).
     *
     * @param json the description file, {@code PREFIX.json}
     * @return the layout
     * @throws UncheckedIOException if a file cannot be read
     * @throws IllegalArgumentException for a description that lacks a field, or arrays that do not fit it
     */
    public static BlockLayout read(Path json) {
        String name = json.getFileName().toString();
        if (!name.endsWith(".json")) {
            throw new IllegalArgumentException("layout description " + json + " must be a .json file");
        }
        Map<String, String> fields = new LinkedHashMap<>();
        try {
            Matcher m = FIELD.matcher(Files.readString(json, StandardCharsets.UTF_8));
            while (m.find()) {
                fields.putIfAbsent(m.group(1), m.group(2).replace("\"", ""));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read layout description " + json + ": "
                    + dev.starling.api.io.Reasons.of(e), e);
        }
        for (String f : new String[] {"format", "q_len", "kv_len", "q_block", "kv_block", "causal"}) {
            if (!fields.containsKey(f)) {
                throw new IllegalArgumentException("layout description " + json + " has no field \"" + f + "\"");
            }
        }
        Format format = Format.parse(fields.get("format"));
        Path prefix = json.resolveSibling(name.substring(0, name.length() - ".json".length()));
        Map<String, Array> arrays = new LinkedHashMap<>();
        List<Path> paths = files(prefix, format);
        for (int i = 0; i < format.arrays().size(); i++) {
            Path file = paths.get(i + 1);
            try {
                NpyArray a = NpyArray.read(file);
                if (!a.dtype().equals("<i4")) {
                    throw new IllegalArgumentException("layout array " + file + " has dtype " + a.dtype()
                            + " but must be int32 '<i4'");
                }
                arrays.put(format.arrays().get(i), new Array(format.arrays().get(i), a.toMaskCounts(), a.shape()));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read layout array " + file + ": "
                        + dev.starling.api.io.Reasons.of(e), e);
            }
        }
        return fromArrays(format, arrays, Integer.parseInt(fields.get("q_len")), Integer.parseInt(fields.get("kv_len")),
                Integer.parseInt(fields.get("q_block")), Integer.parseInt(fields.get("kv_block")),
                Boolean.parseBoolean(fields.get("causal")));
    }
}
