package dev.starling.spark;

import java.io.Serializable;
import java.util.Arrays;
import java.util.Objects;

/**
 * One attention problem of the job: where its float32 {@code .npy} inputs are and where its outputs
 * go, as paths any Hadoop file system resolves ({@code /data/x.npy}, {@code file:/…},
 * {@code hdfs://…}, {@code s3a://…}). One line of the manifest (see {@link ShardedAttention#readManifest}).
 *
 * @param id a name for messages and reports, unique in the job
 * @param q queries {@code [B, Hq, Nq, D]}
 * @param k keys {@code [B, Hkv, Nk, D]}
 * @param v values {@code [B, Hkv, Nk, Dv]}
 * @param out where the output {@code [B, Hq, Nq, Dv]} is written (atomically: a temporary file, then a rename)
 * @param lse where the log-sum-exp {@code [B, Hq, Nq]} is written, or {@code null} for none
 * @param keyLengths valid keys per batch entry ({@code keyLengths[b] <= Nk}), or {@code null} for all
 * @param queryLengths valid queries per batch entry, or {@code null} for all
 */
public record Sequence(String id, String q, String k, String v, String out, String lse, int[] keyLengths,
                       int[] queryLengths) implements Serializable {
    private static final long serialVersionUID = 1L;

    /** Checks that the required fields are present and copies the length arrays. */
    public Sequence {
        Objects.requireNonNull(id, "id");
        for (String[] f : new String[][] {{"q", q}, {"k", k}, {"v", v}, {"out", out}}) {
            if (f[1] == null || f[1].isBlank()) {
                throw new IllegalArgumentException("sequence '" + id + "' has no " + f[0] + " path");
            }
        }
        keyLengths = keyLengths == null ? null : keyLengths.clone();
        queryLengths = queryLengths == null ? null : queryLengths.clone();
    }

    /**
     * A sequence with no LSE output and no lengths.
     *
     * @param id a name
     * @param q queries
     * @param k keys
     * @param v values
     * @param out the output
     * @return the sequence
     */
    public static Sequence of(String id, String q, String k, String v, String out) {
        return new Sequence(id, q, k, v, out, null, null, null);
    }

    /** @param path where to write the LSE @return a copy of this sequence that also writes the LSE */
    public Sequence withLse(String path) {
        return new Sequence(id, q, k, v, out, path, keyLengths, queryLengths);
    }

    /** @param lengths valid keys per batch entry @return a copy of this sequence with key lengths */
    public Sequence withKeyLengths(int... lengths) {
        return new Sequence(id, q, k, v, out, lse, lengths, queryLengths);
    }

    /** @param lengths valid queries per batch entry @return a copy of this sequence with query lengths */
    public Sequence withQueryLengths(int... lengths) {
        return new Sequence(id, q, k, v, out, lse, keyLengths, lengths);
    }

    /** @return a copy of the key lengths, or {@code null} */
    @Override
    public int[] keyLengths() {
        return keyLengths == null ? null : keyLengths.clone();
    }

    /** @return a copy of the query lengths, or {@code null} */
    @Override
    public int[] queryLengths() {
        return queryLengths == null ? null : queryLengths.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Sequence s && s.id.equals(id) && s.q.equals(q) && s.k.equals(k) && s.v.equals(v)
                && s.out.equals(out) && Objects.equals(s.lse, lse) && Arrays.equals(s.keyLengths, keyLengths)
                && Arrays.equals(s.queryLengths, queryLengths);
    }

    @Override
    public int hashCode() {
        return Objects.hash(id, q, k, v, out, lse) * 31 + Arrays.hashCode(keyLengths) * 17 + Arrays.hashCode(queryLengths);
    }

    @Override
    public String toString() {
        return "Sequence[" + id + ": q=" + q + ", k=" + k + ", v=" + v + ", out=" + out + (lse != null ? ", lse=" + lse : "")
                + (keyLengths != null ? ", keyLengths=" + Arrays.toString(keyLengths) : "")
                + (queryLengths != null ? ", queryLengths=" + Arrays.toString(queryLengths) : "") + "]";
    }
}
