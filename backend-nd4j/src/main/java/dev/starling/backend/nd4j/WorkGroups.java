package dev.starling.backend.nd4j;

import dev.starling.api.pattern.BlockLayout;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * How the ND4J plan batches a layout: each query block's CSR row is cut into units of at most
 * {@code maxBlocksPerUnit} key blocks (a BigBird global row becomes several units, merged exactly
 * with the online-softmax rule), and units of similar length are batched into groups whose score
 * tensor {@code [units, queryBlock, maxKeys]} stays under {@code budgetFloats}. Memory per group is
 * therefore bounded whatever the sequence length. Pure Java, unit-tested.
 */
final class WorkGroups {

    /** A part of one query block's row: CSR positions {@code [begin, end)}. */
    record Unit(int queryBlock, int begin, int end) {
        int blocks() {
            return end - begin;
        }
    }

    /** Units computed by one batched product; {@code maxBlocks} is the longest unit. */
    record Group(List<Unit> units, int maxBlocks) {
    }

    private WorkGroups() {
    }

    /**
     * Plans one head layout.
     *
     * @param layout the layout
     * @param headLayout which head layout
     * @param maxBlocksPerUnit longest unit in key blocks
     * @param budgetFloats largest score tensor of a group, in floats
     * @return the groups, longest units first
     */
    static List<Group> plan(BlockLayout layout, int headLayout, int maxBlocksPerUnit, long budgetFloats) {
        List<Unit> units = new ArrayList<>();
        for (int qb = 0; qb < layout.queryBlocks(); qb++) {
            int begin = layout.rowBegin(headLayout, qb);
            int end = layout.rowEnd(headLayout, qb);
            for (int p = begin; p < end; p += maxBlocksPerUnit) {
                units.add(new Unit(qb, p, Math.min(end, p + maxBlocksPerUnit)));
            }
        }
        units.sort(Comparator.comparingInt(Unit::blocks).reversed().thenComparingInt(Unit::queryBlock));
        long perKeyBlock = (long) layout.queryBlock() * layout.keyBlock();
        List<Group> groups = new ArrayList<>();
        int i = 0;
        while (i < units.size()) {
            int maxBlocks = units.get(i).blocks();
            long perUnit = perKeyBlock * maxBlocks;
            int count = (int) Math.max(1, Math.min(units.size() - i, budgetFloats / perUnit));
            groups.add(new Group(List.copyOf(units.subList(i, i + count)), maxBlocks));
            i += count;
        }
        return groups;
    }
}
