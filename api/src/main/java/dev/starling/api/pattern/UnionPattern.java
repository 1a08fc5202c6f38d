package dev.starling.api.pattern;

import java.util.List;
import java.util.stream.Collectors;

/**
 * {@code union(P, Q, ...)}: the set union of the parts' layouts, row by row; a block selected by
 * several parts is counted once; where parts carry block counts (DESIGN section 2), an entry's count is the
 * largest any part gives it (the union of multisets). All parts must have the same block size. The union is shared
 * across heads only when every part is.
 */
public final class UnionPattern implements PatternSpec {
    private final List<PatternSpec> parts;

    /** @param parts at least one pattern, all with the same block size. Not modified. */
    public UnionPattern(List<PatternSpec> parts) {
        if (parts.isEmpty()) {
            throw new IllegalArgumentException("union needs at least one pattern");
        }
        this.parts = List.copyOf(parts);
        int block = this.parts.get(0).blockSize();
        for (PatternSpec p : this.parts) {
            if (p.blockSize() != block) {
                throw new IllegalArgumentException("union parts must share one block size, but " + this.parts.get(0).text()
                        + " has block " + block + " and " + p.text() + " has block " + p.blockSize());
            }
        }
    }

    /** @return the parts */
    public List<PatternSpec> parts() {
        return parts;
    }

    @Override
    public int blockSize() {
        return parts.get(0).blockSize();
    }

    @Override
    public BlockLayout layout(int queryLength, int keyLength, int heads, boolean causal) {
        BlockLayout[] layouts = new BlockLayout[parts.size()];
        boolean shared = true;
        boolean anyCausal = false;
        for (int i = 0; i < layouts.length; i++) {
            layouts[i] = parts.get(i).layout(queryLength, keyLength, heads, causal);
            shared &= layouts[i].isShared();
            anyCausal |= layouts[i].causal();
        }
        BlockLayout first = layouts[0];
        int count = shared ? 1 : heads;
        BlockRow row = new BlockRow(first.keyBlocks());
        CsrBuilder csr = new CsrBuilder(count, first.queryBlocks(), text()).build((h, qb) -> {
            row.clear();
            for (BlockLayout l : layouts) {
                for (int p = l.rowBegin(h, qb); p < l.rowEnd(h, qb); p++) {
                    row.add(l.keyBlock(h, p));
                }
            }
            return row.sortedUpTo(Integer.MAX_VALUE);
        });
        BlockLayout union = BlockLayout.trusted(queryLength, keyLength, first.queryBlock(), first.keyBlock(),
                causal || anyCausal, shared ? 0 : heads, csr.rowStart(), csr.columns());
        return withCounts(union, layouts);
    }

    /**
     * The multiset union of the parts' counts (block multiplicity, DESIGN section 2): each entry of
     * {@code union} gets the largest count any part gives its block, so parts without counts change nothing.
     */
    private static BlockLayout withCounts(BlockLayout union, BlockLayout[] layouts) {
        boolean any = false;
        for (BlockLayout l : layouts) {
            any |= l.hasCounts();
        }
        if (!any) {
            return union;
        }
        int[][] counts = new int[union.heads()][];
        for (int h = 0; h < union.heads(); h++) {
            counts[h] = new int[union.nnz(h)];
            for (int qb = 0; qb < union.queryBlocks(); qb++) {
                for (int p = union.rowBegin(h, qb); p < union.rowEnd(h, qb); p++) {
                    for (BlockLayout l : layouts) {
                        int at = l.entry(h, qb, union.keyBlock(h, p));
                        counts[h][p] = Math.max(counts[h][p], at < 0 ? 0 : l.count(h, at));
                    }
                }
            }
        }
        return union.withCounts(counts);
    }

    @Override
    public String text() {
        return parts.stream().map(PatternSpec::text).collect(Collectors.joining(", ", "union(", ")"));
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof UnionPattern u && u.parts.equals(parts);
    }

    @Override
    public int hashCode() {
        return parts.hashCode();
    }

    @Override
    public String toString() {
        return text();
    }
}
