package dev.starling.bench.compare;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.starling.api.AttentionProblem;
import dev.starling.api.Tensor;

/**
 * Dense attention in PyTorch (libtorch 2.7.1 CPU through DJL 0.36.0, offline), head by head:
 * matmul, softmax, matmul. DJL exposes no fused scaled-dot-product attention, so this is the
 * three-op form a Java user of DJL would write.
 */
final class DenseTorchPeer implements Contender {
    private final long budgetBytes;
    private NDManager manager;
    private AttentionProblem problem;
    private NDArray[] qs;
    private NDArray[] ks;
    private NDArray[] vs;

    DenseTorchPeer(long budgetBytes) {
        this.budgetBytes = budgetBytes;
    }

    @Override
    public String name() {
        return "torch-dense";
    }

    @Override
    public boolean dense() {
        return true;
    }

    static String engineVersion() {
        if (System.getProperty("ai.djl.offline") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
        return Engine.getEngine("PyTorch").getVersion();
    }

    @Override
    public String unavailableReason() {
        try {
            engineVersion();
            return null;
        } catch (Throwable e) {
            return "PyTorch (DJL) could not be loaded: " + e;
        }
    }

    @Override
    public String refuses(AttentionProblem p) {
        return DenseBudget.refuses(p, budgetBytes, 3);
    }

    @Override
    public void prepare(AttentionProblem p, Tensor q, Tensor k, Tensor v) {
        close();
        problem = p;
        manager = NDManager.newBaseManager("PyTorch");
        int heads = p.queryHeads();
        qs = new NDArray[heads];
        ks = new NDArray[heads];
        vs = new NDArray[heads];
        for (int h = 0; h < heads; h++) {
            int kvh = p.kvHeadOf(h);
            qs[h] = slice(q, h, p.queryLength(), p.headDim()).mul(p.scale());
            ks[h] = slice(k, kvh, p.keyLength(), p.headDim()).transpose();
            vs[h] = slice(v, kvh, p.keyLength(), p.valueDim());
        }
    }

    private NDArray slice(Tensor t, int h, int n, int d) {
        float[] part = new float[n * d];
        System.arraycopy(t.data(), t.offset(0, h, 0), part, 0, part.length);
        return manager.create(part, new Shape(n, d));
    }

    @Override
    public void run(Tensor out) {
        for (int h = 0; h < problem.queryHeads(); h++) {
            NDArray scores = qs[h].matMul(ks[h]);
            NDArray weights = scores.softmax(-1);
            scores.close();
            NDArray o = weights.matMul(vs[h]);
            weights.close();
            float[] result = o.toFloatArray();
            o.close();
            System.arraycopy(result, 0, out.data(), out.offset(0, h, 0), result.length);
        }
    }

    @Override
    public void close() {
        if (manager != null) {
            manager.close();
            manager = null;
        }
    }
}
