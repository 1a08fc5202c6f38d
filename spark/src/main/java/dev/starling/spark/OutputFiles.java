package dev.starling.spark;

import dev.starling.api.io.Reasons;
import dev.starling.api.io.RealFile;
import dev.starling.api.npy.NpyArray;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileContext;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Options;
import org.apache.hadoop.fs.Path;

/**
 * The driver's side of the output files: checks before anything runs, then the assembly of the
 * parts into each {@code .npy} file, written atomically (a temporary file beside the target, then
 * a rename: {@code ATOMIC_MOVE} on a local file system, {@code rename(…, OVERWRITE)} through
 * Hadoop's {@link FileContext} elsewhere, atomic on HDFS). An output is never an input.
 */
final class OutputFiles {

    private OutputFiles() {
    }

    /**
     * Checks every output before any work: its folder exists, it is no input of any sequence and no
     * other output.
     *
     * @param conf resolves the paths
     * @param sequences the job's sequences
     * @throws IOException if a folder cannot be inspected
     * @throws IllegalArgumentException naming the output and what it collides with
     */
    static void check(Configuration conf, List<Sequence> sequences) throws IOException {
        Map<Path, String> inputs = new LinkedHashMap<>();
        for (Sequence s : sequences) {
            inputs.put(qualified(conf, s.q()), "q of sequence '" + s.id() + "'");
            inputs.put(qualified(conf, s.k()), "k of sequence '" + s.id() + "'");
            inputs.put(qualified(conf, s.v()), "v of sequence '" + s.id() + "'");
        }
        Map<Path, String> outputs = new LinkedHashMap<>();
        for (Sequence s : sequences) {
            for (String[] o : new String[][] {{"out", s.out()}, {"lse", s.lse()}}) {
                if (o[1] == null) {
                    continue;
                }
                String what = o[0] + " of sequence '" + s.id() + "'";
                Path p = qualified(conf, o[1]);
                if (inputs.containsKey(p)) {
                    throw new IllegalArgumentException(what + " " + o[1] + " is the same file as " + inputs.get(p)
                            + "; the job never writes over an input");
                }
                String other = outputs.put(p, what);
                if (other != null) {
                    throw new IllegalArgumentException(what + " and " + other + " are the same file " + o[1]
                            + "; give them different names");
                }
                Path parent = p.getParent();
                FileStatus st;
                try {
                    st = parent.getFileSystem(conf).getFileStatus(parent);
                } catch (FileNotFoundException e) {
                    throw new IllegalArgumentException(what + ": folder " + parent + " does not exist");
                }
                if (!st.isDirectory()) {
                    throw new IllegalArgumentException(what + ": " + parent + " is not a folder");
                }
                FileSystem fs = p.getFileSystem(conf);
                if (fs.exists(p) && fs.getFileStatus(p).isDirectory()) {
                    throw new IllegalArgumentException(what + ": " + o[1] + " is a folder");
                }
            }
        }
    }

    private static Path qualified(Configuration conf, String path) throws IOException {
        Path p = new Path(path);
        return p.getFileSystem(conf).makeQualified(p);
    }

    /** A file written in full beside its target, to be renamed onto it by {@link #commit}. */
    record Staged(Path temporary, Path target) {
    }

    /**
     * Writes a sequence's output (and LSE) from its parts into temporary files beside the targets;
     * the targets are not touched.
     *
     * @param conf resolves the paths
     * @param plan the sequence
     * @param parts every part of the sequence, any order
     * @param runId the run
     * @return the temporaries, output first
     * @throws IOException if reading a part or writing a temporary fails
     */
    static List<Staged> stage(Configuration conf, SequencePlan plan, List<OutputParts.WrittenPart> parts, String runId)
            throws IOException {
        List<OutputParts.WrittenPart> sorted = new ArrayList<>(parts);
        sorted.sort(Comparator.comparingInt(OutputParts.WrittenPart::partition));
        long rowBlocks = sorted.stream().mapToLong(OutputParts.WrittenPart::rowBlocks).sum();
        if (sorted.size() != plan.outputPartitions || rowBlocks != plan.rowBlocks()) {
            throw new IllegalStateException("sequence '" + plan.sequence.id() + "': " + sorted.size() + " parts with "
                    + rowBlocks + " row blocks came back, expected " + plan.outputPartitions + " with " + plan.rowBlocks());
        }
        List<Staged> staged = new ArrayList<>();
        List<String> outParts = sorted.stream().map(OutputParts.WrittenPart::out).toList();
        staged.add(write(conf, plan.sequence.out(), runId, NpyArray.headerBytes("<f4", plan.batch, plan.queryHeads,
                plan.queryLength, plan.valueDim), outParts, plan.outputBytes()));
        if (plan.sequence.lse() != null) {
            List<String> lseParts = sorted.stream().map(OutputParts.WrittenPart::lse).toList();
            staged.add(write(conf, plan.sequence.lse(), runId, NpyArray.headerBytes("<f4", plan.batch, plan.queryHeads,
                    plan.queryLength), lseParts, 4L * plan.batch * plan.queryHeads * plan.queryLength));
        }
        return staged;
    }

    /**
     * Renames every sequence's temporaries onto their targets, sequence by sequence, once all of
     * them are written. Two renames are never one atomic step: if one fails (the folder changed
     * under the job), the message says exactly which sequences were already replaced.
     *
     * @param conf resolves the paths
     * @param plans the sequences, in order
     * @param staged each sequence's temporaries, in the same order
     * @throws IOException naming the file that could not be replaced, the sequences written and those not
     */
    static void commit(Configuration conf, List<SequencePlan> plans, List<List<Staged>> staged) throws IOException {
        List<String> written = new ArrayList<>();
        for (int i = 0; i < plans.size(); i++) {
            for (Staged f : staged.get(i)) {
                try {
                    rename(conf, f.temporary(), f.target());
                } catch (IOException e) {
                    List<String> left = plans.subList(i, plans.size()).stream().map(p -> "'" + p.sequence.id() + "'").toList();
                    throw new IOException(f.target() + ": cannot replace (" + Reasons.of(e) + "); sequences written: "
                            + (written.isEmpty() ? "none" : String.join(", ", written)) + "; not written (old files kept"
                            + (staged.get(i).indexOf(f) > 0 ? ", except the output of the first of them" : "") + "): "
                            + String.join(", ", left), e);
                }
            }
            written.add("'" + plans.get(i).sequence.id() + "'");
        }
    }

    private static Staged write(Configuration conf, String target, String runId, byte[] header, List<String> parts,
                                long dataBytes) throws IOException {
        Path dst = new Path(target);
        Path tmp = temporary(target, runId);
        FileSystem fs = dst.getFileSystem(conf);
        boolean local = isLocal(fs);
        long copied = 0;
        // On a local file system the file is written directly, without Hadoop's checksum file beside it.
        try (OutputStream o = local ? Files.newOutputStream(localPath(fs, tmp)) : fs.create(tmp, true)) {
            o.write(header);
            byte[] buf = new byte[1 << 20];
            for (String part : parts) {
                Path p = new Path(part);
                try (InputStream in = p.getFileSystem(conf).open(p)) {
                    for (int n; (n = in.read(buf)) > 0; ) {
                        o.write(buf, 0, n);
                        copied += n;
                    }
                }
            }
        } catch (IOException e) {
            throw new IOException(target + ": cannot write (" + Reasons.of(e) + "); no output of this run was written", e);
        }
        if (copied != dataBytes) {
            fs.delete(tmp, false);
            throw new IllegalStateException(target + ": the parts hold " + copied + " bytes, expected " + dataBytes);
        }
        return new Staged(tmp, dst);
    }

    /** @return the temporary file beside {@code target} that a run writes before renaming it */
    static Path temporary(String target, String runId) {
        Path p = new Path(target);
        return new Path(p.getParent(), RealFile.hiddenName(p.getName(), "tmp-" + runId));
    }

    private static void rename(Configuration conf, Path tmp, Path dst) throws IOException {
        FileSystem fs = dst.getFileSystem(conf);
        if (isLocal(fs)) {
            java.nio.file.Path to = localPath(fs, dst);
            Files.move(localPath(fs, tmp), to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            // A checksum file Hadoop once wrote beside the target would no longer match it.
            Files.deleteIfExists(to.resolveSibling("." + to.getFileName() + ".crc"));
        } else {
            FileContext.getFileContext(dst.toUri(), conf).rename(tmp, dst, Options.Rename.OVERWRITE);
        }
    }

    private static boolean isLocal(FileSystem fs) {
        return "file".equals(fs.getUri().getScheme());
    }

    private static java.nio.file.Path localPath(FileSystem fs, Path p) {
        return java.nio.file.Paths.get(fs.makeQualified(p).toUri());
    }

    /**
     * Removes what a run left beside the outputs (parts, temporary files); best effort.
     *
     * @param conf resolves the paths
     * @param sequences the job's sequences
     * @param runId the run
     */
    static void cleanUp(Configuration conf, List<Sequence> sequences, String runId) {
        for (Sequence s : sequences) {
            for (String target : new String[] {s.out(), s.lse()}) {
                if (target == null) {
                    continue;
                }
                for (Path p : new Path[] {OutputParts.stagingDir(target, runId), temporary(target, runId)}) {
                    try {
                        p.getFileSystem(conf).delete(p, true);
                    } catch (IOException e) {
                        // Best effort: a leftover folder starting with '.' does no harm and names its run.
                    }
                }
            }
        }
    }
}
