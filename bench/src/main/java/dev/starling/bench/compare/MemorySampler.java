package dev.starling.bench.compare;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.lang.management.MemoryUsage;
import org.bytedeco.javacpp.Pointer;

/**
 * The memory one contender needs at one length, above what the process used just before: a Java
 * heap part and a native part, added.
 *
 * <ul>
 * <li><b>Java heap</b>: bytes allocated by {@code prepare} (the plan and what it keeps), plus for
 *     the calls the smaller of two upper bounds of what a call holds at once: the most bytes one call
 *     allocated (summed over all threads but the sampler's, from the JVM's per-thread allocation
 *     counters; exact, but it counts what the call dropped again) and the peak rise in heap occupancy
 *     (sampled; it counts garbage not yet collected, and moves in TLAB-sized steps). A pure-Java
 *     backend's plan and scratch show up here; a backend that churns through garbage is not charged
 *     for all of it. Where the JVM has no allocation counters, the occupancy rise alone.</li>
 * <li><b>Native</b>: the highest growth of the process's resident size (RSS), less any growth of the
 *     committed Java heap (already in the heap part): ND4J's and libtorch's buffers, pages actually
 *     touched. Before the baseline, a full collection frees dropped native buffers,
 *     {@link NativeHeap#trim()} hands freed memory back to the system (so memory an earlier contender
 *     freed and this one reuses counts again), and the heap is left to finish shrinking (the collector
 *     gives memory back concurrently, which would otherwise hide growth). Sampled every
 *     {@value #PERIOD_MS} ms by a daemon thread and after every call.</li>
 * </ul>
 * The resident size alone, which this replaced, misses heap allocations (the heap's pages are already
 * resident) and reused native memory, which is why a pure-Java backend read 0 MB. (Counting bytes
 * {@code malloc}ed instead would count buffers that are reserved but never touched.)
 */
final class MemorySampler implements AutoCloseable {
    /** Sampling period of the background thread. */
    static final long PERIOD_MS = 5;

    private static final MemoryMXBean MEMORY = ManagementFactory.getMemoryMXBean();
    private static final com.sun.management.ThreadMXBean THREADS = threads();

    private final long residentBaseline;
    private final long committedBaseline;
    private final long heapBaseline;
    private final long allocatedAtStart;
    private long allocatedByPrepare;
    private long callStart;
    private long mostByOneCall;
    private volatile long nativePeak;
    private volatile long heapPeak;
    private volatile boolean running = true;
    private final Thread thread;

    /** Takes the baseline (after a full collection and a trim) and starts sampling; call before {@code prepare}. */
    MemorySampler() {
        System.gc();
        NativeHeap.trim();
        MemoryUsage heap = settledHeap();
        heapBaseline = heap.getUsed();
        committedBaseline = heap.getCommitted();
        residentBaseline = Pointer.physicalBytes();
        allocatedAtStart = allocated();
        thread = new Thread(() -> {
            while (running) {
                sample();
                try {
                    Thread.sleep(PERIOD_MS);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "starling-memory-sampler");
        thread.setDaemon(true);
        thread.start();
    }

    private static com.sun.management.ThreadMXBean threads() {
        try {
            if (ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean t
                    && t.isThreadAllocatedMemorySupported()) {
                t.setThreadAllocatedMemoryEnabled(true);
                return t;
            }
        } catch (UnsupportedOperationException | SecurityException e) {
            // Fall back to sampling heap occupancy.
        }
        return null;
    }

    /** Bytes allocated on the heap so far by every live thread but the sampler, or 0 without counters. */
    private long allocated() {
        if (THREADS == null) {
            return 0;
        }
        long[] ids = THREADS.getAllThreadIds();
        long[] bytes = THREADS.getThreadAllocatedBytes(ids);
        long sum = 0;
        for (int i = 0; i < ids.length; i++) {
            if (thread == null || ids[i] != thread.getId()) {
                sum += Math.max(0, bytes[i]);
            }
        }
        return sum;
    }

    /** The heap's usage once its committed size has stopped changing (at most half a second). */
    private static MemoryUsage settledHeap() {
        MemoryUsage heap = MEMORY.getHeapMemoryUsage();
        for (int i = 0; i < 10; i++) {
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            MemoryUsage next = MEMORY.getHeapMemoryUsage();
            if (next.getCommitted() == heap.getCommitted()) {
                return next;
            }
            heap = next;
        }
        return heap;
    }

    /** Marks the end of {@code prepare}. */
    void prepared() {
        allocatedByPrepare = Math.max(0, allocated() - allocatedAtStart);
        sample();
    }

    /** Marks the start of a call. */
    void beforeCall() {
        callStart = allocated();
    }

    /** Marks the end of a call. */
    void afterCall() {
        mostByOneCall = Math.max(mostByOneCall, allocated() - callStart);
        sample();
    }

    /** Takes one sample now. */
    private void sample() {
        MemoryUsage heap = MEMORY.getHeapMemoryUsage();
        long nativeGrowth = Math.max(0, Pointer.physicalBytes() - residentBaseline
                - Math.max(0, heap.getCommitted() - committedBaseline));
        long heapGrowth = Math.max(0, heap.getUsed() - heapBaseline);
        synchronized (this) {
            nativePeak = Math.max(nativePeak, nativeGrowth);
            heapPeak = Math.max(heapPeak, heapGrowth);
        }
    }

    /** @return bytes: the heap part plus the native part (see the class comment) */
    long peakAboveBaseline() {
        sample();
        long heap = THREADS != null ? allocatedByPrepare + Math.min(mostByOneCall, heapPeak) : heapPeak;
        return heap + nativePeak;
    }

    @Override
    public void close() {
        running = false;
        thread.interrupt();
    }
}
