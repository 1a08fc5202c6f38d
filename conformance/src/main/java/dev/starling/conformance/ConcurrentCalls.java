package dev.starling.conformance;

import dev.starling.conformance.ConformanceRules.RuleFailure;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;
import java.util.function.IntFunction;

/**
 * The harness of rules 12 and 32: several threads call one plan at once, each with its own inputs,
 * several times, released together; every result must equal, bit for bit, a serial call's on the
 * same inputs. Different inputs per thread are what show an output or scratch buffer the plan owns:
 * with the same inputs every thread writes the same values.
 */
final class ConcurrentCalls {
    private ConcurrentCalls() {
    }

    /**
     * Runs the calls and compares them with the serial results.
     *
     * @param what the entry point, for messages ({@code forward}, {@code backward})
     * @param label the case, for messages
     * @param callsPerThread calls each thread makes
     * @param serial the result of one serial call per thread, on that thread's inputs
     * @param call thread {@code t}'s call: a fresh result on thread {@code t}'s inputs
     * @param difference where two results differ bit for bit, empty when they do not
     * @param <R> a call's result
     * @return {@code NaN} (the rule has no error ratio)
     * @throws RuleFailure naming how many concurrent calls differed and the first difference, or what threw
     */
    static <R> double check(String what, String label, int callsPerThread, List<R> serial, IntFunction<Callable<R>> call,
                            BiFunction<R, R, Optional<String>> difference) {
        int threads = serial.size();
        ExecutorService callers = Executors.newFixedThreadPool(threads);
        try {
            CountDownLatch start = new CountDownLatch(1);
            List<Future<List<R>>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                Callable<R> mine = call.apply(t);
                futures.add(callers.submit(() -> {
                    start.await();
                    List<R> results = new ArrayList<>();
                    for (int n = 0; n < callsPerThread; n++) {
                        results.add(mine.call());
                    }
                    return results;
                }));
            }
            start.countDown();
            int differing = 0;
            String first = null;
            for (int t = 0; t < threads; t++) {
                List<R> results = futures.get(t).get(10, TimeUnit.MINUTES);
                for (int n = 0; n < results.size(); n++) {
                    Optional<String> d = difference.apply(serial.get(t), results.get(n));
                    if (d.isPresent() && differing++ == 0) {
                        first = "thread " + t + ", call " + n + ": " + d.get();
                    }
                }
            }
            if (differing > 0) {
                throw new RuleFailure(label + ", each of " + threads + " threads with its own inputs: " + differing
                        + " of " + threads * callsPerThread + " concurrent " + what + " calls differed bit for bit from a "
                        + "serial call on the same inputs; first " + first, Double.NaN);
            }
        } catch (RuleFailure e) {
            throw e;
        } catch (ExecutionException e) {
            throw new RuleFailure(label + ": a concurrent " + what + " threw " + e.getCause(), Double.NaN);
        } catch (Exception e) {
            throw new RuleFailure(label + ": concurrent " + what + " failed: " + e, Double.NaN);
        } finally {
            callers.shutdownNow();
        }
        return Double.NaN;
    }
}
