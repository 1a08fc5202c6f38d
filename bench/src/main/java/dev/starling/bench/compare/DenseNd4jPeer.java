package dev.starling.bench.compare;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration;
import org.nd4j.linalg.api.memory.enums.AllocationPolicy;
import org.nd4j.linalg.api.memory.enums.LearningPolicy;
import org.nd4j.linalg.api.memory.enums.SpillPolicy;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * Dense attention in ND4J, head by head: {@code softmax(s·Q·Kᵀ)·V} with matmul, a row-max shift,
 * exp, row sums and a second matmul. One head's {@code N × N} scores at a time bounds its memory.
 */
final class DenseNd4jPeer implements Contender {
    private final long budgetBytes;
    private AttentionProblem problem;
    private INDArray[] qs;
    private INDArray[] ks;
    private INDArray[] vs;

    DenseNd4jPeer(long budgetBytes) {
        this.budgetBytes = budgetBytes;
    }

    @Override
    public String name() {
        return "nd4j-dense";
    }

    @Override
    public boolean dense() {
        return true;
    }

    @Override
    public String unavailableReason() {
        try {
            Nd4j.create(1).close();
            return null;
        } catch (Throwable e) {
            return "ND4J could not be loaded: " + e;
        }
    }

    @Override
    public String noBackward() {
        return "this ND4J dense peer is the forward formula in plain ops, with no backward pass";
    }

    @Override
    public String refuses(AttentionProblem p) {
        return DenseBudget.refuses(p, budgetBytes, 3);
    }

    @Override
    public void prepare(AttentionProblem p, Tensor q, Tensor k, Tensor v) {
        close();
        this.problem = p;
        int heads = p.queryHeads();
        qs = new INDArray[heads];
        ks = new INDArray[heads];
        vs = new INDArray[heads];
        for (int h = 0; h < heads; h++) {
            int kvh = p.kvHeadOf(h);
            qs[h] = slice(q, h, p.queryLength(), p.headDim()).muli(p.scale());
            ks[h] = slice(k, kvh, p.keyLength(), p.headDim());
            vs[h] = slice(v, kvh, p.keyLength(), p.valueDim());
        }
    }

    private static INDArray slice(Tensor t, int h, int n, int d) {
        INDArray a = Nd4j.createUninitialized(DataType.FLOAT, new long[] {n, d}, 'c');
        a.data().asNioFloat().put(t.data(), t.offset(0, h, 0), n * d);
        return a;
    }

    @Override
    @SuppressWarnings("try")   // the workspace is never named in its try: the block scopes where ops allocate
    public void run(Tensor out) {
        long n = problem.queryLength();
        long bytes = 4 * (n * problem.keyLength() + 2 * n + n * problem.valueDim() + n * problem.headDim()) + (1L << 20);
        // Arrays that ops return are freed only by the GC unless they live in a workspace; without it the
        // N x N scores of every call pile up off-heap.
        WorkspaceConfiguration config = WorkspaceConfiguration.builder().initialSize(bytes)
                .policyAllocation(AllocationPolicy.STRICT).policyLearning(LearningPolicy.NONE)
                .policySpill(SpillPolicy.EXTERNAL).build();
        String id = "starling-dense-" + System.identityHashCode(this);
        try {
            for (int h = 0; h < problem.queryHeads(); h++) {
                try (MemoryWorkspace ws = Nd4j.getWorkspaceManager().getAndActivateWorkspace(config, id)) {
                    INDArray s = qs[h].mmul(ks[h].transpose());
                    INDArray max = s.max(1);
                    s.subiColumnVector(max.reshape(max.length(), 1));
                    Transforms.exp(s, false);
                    INDArray sum = s.sum(1);
                    INDArray o = s.mmul(vs[h]);
                    o.diviColumnVector(sum.reshape(sum.length(), 1));
                    o.data().asNioFloat().get(out.data(), out.offset(0, h, 0), problem.queryLength() * problem.valueDim());
                }
            }
        } finally {
            MemoryWorkspace ws = Nd4j.getWorkspaceManager().getWorkspaceForCurrentThread(id);
            if (ws != null) {
                Nd4j.getWorkspaceManager().destroyWorkspace(ws);
            }
        }
    }

    @Override
    public void close() {
        if (qs != null) {
            for (INDArray[] arrays : new INDArray[][] {qs, ks, vs}) {
                for (INDArray a : arrays) {
                    a.close();
                }
            }
            qs = null;
        }
    }
}
