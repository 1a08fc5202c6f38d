package dev.starling.bench.compare;

import org.bytedeco.javacpp.Pointer;

/**
 * Peak resident memory while a measurement runs: a daemon thread reads the process's resident
 * size every 20 ms. Covers the Java heap and native memory (ND4J, libtorch) alike.
 */
final class MemorySampler implements AutoCloseable {
    private final long baseline;
    private volatile long peak;
    private volatile boolean running = true;
    private final Thread thread;

    MemorySampler() {
        baseline = Pointer.physicalBytes();
        peak = baseline;
        thread = new Thread(() -> {
            while (running) {
                peak = Math.max(peak, Pointer.physicalBytes());
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "starling-memory-sampler");
        thread.setDaemon(true);
        thread.start();
    }

    /** @return bytes of the peak above the resident size when sampling started */
    long peakAboveBaseline() {
        return Math.max(0, Math.max(peak, Pointer.physicalBytes()) - baseline);
    }

    /** @return the peak resident size of the process */
    long peak() {
        return Math.max(peak, Pointer.physicalBytes());
    }

    @Override
    public void close() {
        running = false;
        thread.interrupt();
    }
}
