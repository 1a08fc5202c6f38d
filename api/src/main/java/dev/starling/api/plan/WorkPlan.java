package dev.starling.api.plan;

import dev.starling.api.pattern.BlockLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * How a layout's work is cut into units (DESIGN section 3b), written once for every backend.
 *
 * <p>A unit is one query block against a contiguous range of its row's allowed key blocks (CSR
 * positions {@code [begin, end)}). A row with more than {@code maxBlocksPerUnit} key blocks —
 * BigBird's global rows see every block — is split into several units, each computing a partial
 * result that is merged exactly with {@link OnlineSoftmax}; it gets {@code parts} merge slots
 * numbered from {@code firstSlot}. A row that is not split has slot {@code −1}: its unit writes
 * the output directly. Units are ordered longest first (ties by query block), so a pool or a GPU
 * grid starts the long work early and has no tail.
 *
 * <p>Per head layout ({@link BlockLayout#heads()}); immutable.
 */
public final class WorkPlan {
    /** Ints per packed unit: query block, CSR begin, CSR end, slot. */
    public static final int UNIT_INTS = 4;
    /** Ints per packed split row: query block, first slot, parts, 0. */
    public static final int SPLIT_INTS = 4;

    /**
     * One unit of work.
     *
     * @param queryBlock the query block
     * @param begin first CSR position of its key blocks (see {@link BlockLayout#rowBegin})
     * @param end one past the last CSR position
     * @param slot merge slot of a split row's part, or {@code −1} when the unit covers the whole row
     */
    public record Unit(int queryBlock, int begin, int end, int slot) {
        /** @return key blocks in this unit */
        public int blocks() {
            return end - begin;
        }
    }

    /**
     * A row computed in several parts.
     *
     * @param queryBlock the query block
     * @param firstSlot merge slot of its first part; parts use consecutive slots
     * @param parts number of parts
     */
    public record Split(int queryBlock, int firstSlot, int parts) {
    }

    private final BlockLayout layout;
    private final int maxBlocksPerUnit;
    private final List<List<Unit>> units;
    private final List<List<Split>> splits;

    private WorkPlan(BlockLayout layout, int maxBlocksPerUnit, List<List<Unit>> units, List<List<Split>> splits) {
        this.layout = layout;
        this.maxBlocksPerUnit = maxBlocksPerUnit;
        this.units = units;
        this.splits = splits;
    }

    /**
     * Plans a layout.
     *
     * @param layout the layout. Not modified.
     * @param maxBlocksPerUnit longest unit in key blocks, {@code >= 1}; {@link Integer#MAX_VALUE} never splits
     * @return the plan
     * @throws IllegalArgumentException if {@code maxBlocksPerUnit < 1}
     */
    public static WorkPlan of(BlockLayout layout, int maxBlocksPerUnit) {
        if (layout == null) {
            throw new IllegalArgumentException("layout must not be null");
        }
        if (maxBlocksPerUnit < 1) {
            throw new IllegalArgumentException("maxBlocksPerUnit must be >= 1, got " + maxBlocksPerUnit);
        }
        List<List<Unit>> units = new ArrayList<>();
        List<List<Split>> splits = new ArrayList<>();
        for (int hl = 0; hl < layout.heads(); hl++) {
            List<Unit> headUnits = new ArrayList<>();
            List<Split> headSplits = new ArrayList<>();
            int slot = 0;
            for (int qb = 0; qb < layout.queryBlocks(); qb++) {
                int begin = layout.rowBegin(hl, qb);
                int end = layout.rowEnd(hl, qb);
                if (end - begin <= maxBlocksPerUnit) {
                    headUnits.add(new Unit(qb, begin, end, -1));
                    continue;
                }
                int first = slot;
                for (long p = begin; p < end; p += maxBlocksPerUnit) {
                    headUnits.add(new Unit(qb, (int) p, (int) Math.min(end, p + maxBlocksPerUnit), slot++));
                }
                headSplits.add(new Split(qb, first, slot - first));
            }
            headUnits.sort(Comparator.comparingInt(Unit::blocks).reversed().thenComparingInt(Unit::queryBlock)
                    .thenComparingInt(Unit::begin));
            units.add(List.copyOf(headUnits));
            splits.add(List.copyOf(headSplits));
        }
        return new WorkPlan(layout, maxBlocksPerUnit, List.copyOf(units), List.copyOf(splits));
    }

    /** @return the layout planned */
    public BlockLayout layout() {
        return layout;
    }

    /** @return the longest unit in key blocks */
    public int maxBlocksPerUnit() {
        return maxBlocksPerUnit;
    }

    /** @return number of head layouts (1 when the layout is shared by every head) */
    public int headLayouts() {
        return units.size();
    }

    /** @return the units of head layout {@code headLayout}, longest first */
    public List<Unit> units(int headLayout) {
        return units.get(headLayout);
    }

    /** @return the split rows of head layout {@code headLayout}, by query block */
    public List<Split> splits(int headLayout) {
        return splits.get(headLayout);
    }

    /** @return merge slots of head layout {@code headLayout} */
    public int slots(int headLayout) {
        List<Split> s = splits.get(headLayout);
        return s.isEmpty() ? 0 : s.get(s.size() - 1).firstSlot() + s.get(s.size() - 1).parts();
    }

    /** @return the most units of any head layout */
    public int unitsPerLayout() {
        return units.stream().mapToInt(List::size).max().orElse(0);
    }

    /** @return the most split rows of any head layout */
    public int splitsPerLayout() {
        return splits.stream().mapToInt(List::size).max().orElse(0);
    }

    /** @return the most merge slots of any head layout */
    public int slotsPerLayout() {
        int most = 0;
        for (int hl = 0; hl < headLayouts(); hl++) {
            most = Math.max(most, slots(hl));
        }
        return most;
    }

    /**
     * The units packed for a GPU: head layout {@code hl}'s unit {@code u} at
     * {@code (hl · unitsPerLayout() + u) · UNIT_INTS}, as {@code (queryBlock, begin, end, slot)}
     * with {@code begin} and {@code end} offset by the head layouts before it, so they index the
     * concatenation of every head layout's key blocks ({@link #packKeyBlocks()}). Head layouts
     * with fewer units are padded with {@code (−1, 0, 0, −1)}: no work.
     *
     * @return a new array of at least {@code UNIT_INTS} ints
     */
    public int[] packUnits() {
        int per = unitsPerLayout();
        int[] packed = new int[Math.max(1, Math.multiplyExact(Math.multiplyExact(headLayouts(), per), UNIT_INTS))];
        Arrays.fill(packed, -1);
        long base = 0;
        for (int hl = 0; hl < headLayouts(); hl++) {
            List<Unit> list = units.get(hl);
            for (int u = 0; u < per; u++) {
                int at = (hl * per + u) * UNIT_INTS;
                if (u < list.size()) {
                    Unit unit = list.get(u);
                    packed[at] = unit.queryBlock();
                    packed[at + 1] = Math.toIntExact(base + unit.begin());
                    packed[at + 2] = Math.toIntExact(base + unit.end());
                    packed[at + 3] = unit.slot();
                } else {
                    packed[at + 1] = 0;
                    packed[at + 2] = 0;
                }
            }
            base += layout.nnz(hl);
        }
        return packed;
    }

    /**
     * The split rows packed for a GPU: head layout {@code hl}'s split {@code s} at
     * {@code (hl · splitsPerLayout() + s) · SPLIT_INTS}, as {@code (queryBlock, firstSlot, parts, 0)};
     * padding is {@code (−1, 0, 0, 0)}.
     *
     * @return a new array of at least {@code SPLIT_INTS} ints
     */
    public int[] packSplits() {
        int per = splitsPerLayout();
        int[] packed = new int[Math.max(1, Math.multiplyExact(Math.multiplyExact(headLayouts(), per), SPLIT_INTS))];
        for (int x = 0; x < packed.length; x += SPLIT_INTS) {
            packed[x] = -1;
        }
        for (int hl = 0; hl < headLayouts(); hl++) {
            List<Split> list = splits.get(hl);
            for (int s = 0; s < list.size(); s++) {
                int at = (hl * per + s) * SPLIT_INTS;
                packed[at] = list.get(s).queryBlock();
                packed[at + 1] = list.get(s).firstSlot();
                packed[at + 2] = list.get(s).parts();
            }
        }
        return packed;
    }

    /**
     * Every head layout's key block indices, concatenated (the {@code begin}/{@code end} of
     * {@link #packUnits()} index this).
     *
     * @return a new array of at least one int
     * @throws ArithmeticException if the layout holds more than {@code 2^31 − 1} blocks
     */
    public int[] packKeyBlocks() {
        long total = 0;
        for (int hl = 0; hl < headLayouts(); hl++) {
            total += layout.nnz(hl);
        }
        int[] packed = new int[Math.max(1, Math.toIntExact(total))];
        int at = 0;
        for (int hl = 0; hl < headLayouts(); hl++) {
            int[] blocks = layout.keyBlockIndices(hl);
            System.arraycopy(blocks, 0, packed, at, blocks.length);
            at += blocks.length;
        }
        return packed;
    }
}
