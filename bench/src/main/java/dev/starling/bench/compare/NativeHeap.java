package dev.starling.bench.compare;

import com.sun.jna.Library;
import com.sun.jna.Native;

/**
 * The C allocator's free memory, handed back to the system: glibc's {@code malloc_trim(0)}, called
 * through JNA (which DJL brings). Freed native memory (ND4J's and libtorch's buffers) otherwise stays
 * resident for reuse, so a contender that reuses what an earlier one freed would not grow the
 * resident size at all; trimming before a baseline makes the growth after it count every page the
 * contender touches. Without glibc or JNA, {@link #trim()} does nothing and says so.
 */
final class NativeHeap {

    /** The one C function used. */
    interface C extends Library {
        /**
         * @param pad bytes to leave untrimmed at the top of the heap
         * @return 1 if memory was released, else 0
         */
        int malloc_trim(long pad);
    }

    private static final C LIBC = load();

    private NativeHeap() {
    }

    private static C load() {
        try {
            if (!System.getProperty("os.name", "").startsWith("Linux")) {
                return null;
            }
            C c = Native.load("c", C.class);
            c.malloc_trim(0);
            return c;
        } catch (Throwable e) {
            // No JNA or no glibc: baselines then include freed memory kept for reuse.
            return null;
        }
    }

    /** @return whether {@link #trim()} can hand freed memory back (glibc and JNA present) */
    static boolean canTrim() {
        return LIBC != null;
    }

    /** Hands the allocator's free memory back to the system, where that is possible. */
    static void trim() {
        if (LIBC != null) {
            LIBC.malloc_trim(0);
        }
    }
}
