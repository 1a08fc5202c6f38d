package dev.starling.api.selection;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.SparseAttention;
import dev.starling.api.spi.ProviderFolder;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BackendSelectorTest {
    private static final AttentionProblem PROBLEM = AttentionProblem.builder().heads(2).length(64).headDim(16).build();
    private static final AttentionProblem CAUSAL = PROBLEM.toBuilder().causal(true).build();

    private static BackendSelector selector(List<SparseAttention> backends, Map<String, String> props,
                                            Map<String, String> env) {
        return BackendSelector.of(backends, props::get, env::get);
    }

    @Test
    void highestPriorityAvailableBackendThatFitsWins() {
        SparseAttention good = new FakeBackends.Good();
        SparseAttention noCausal = new FakeBackends.Fake("fast", 20, Availability.available(), FakeBackends.noCausal());
        BackendSelector s = selector(List.of(good, noCausal, new FakeBackends.Missing()), Map.of(), Map.of());
        assertSame(noCausal, s.select(PROBLEM, false));
        assertSame(good, s.select(CAUSAL, false), "capability fit: fast lacks CAUSAL");
        assertEquals(List.of("gpu", "fast", "good"), s.reports().stream().map(BackendReport::name).toList());
    }

    @Test
    void propertyWinsOverEnvironmentAndNoSilentFallback() {
        SparseAttention good = new FakeBackends.Good();
        SparseAttention other = new FakeBackends.Fake("other", 1, Availability.available(), FakeBackends.fp32());
        BackendSelector s = selector(List.of(good, other), Map.of("starling.backend", "other"),
                Map.of("STARLING_BACKEND", "good"));
        assertSame(other, s.select(PROBLEM, false));
        assertSame(good, selector(List.of(good, other), Map.of(), Map.of("STARLING_BACKEND", "GOOD")).select(PROBLEM, false));

        NoBackendException e = assertThrows(NoBackendException.class,
                () -> selector(List.of(good, new FakeBackends.Missing()), Map.of("starling.backend", "gpu"), Map.of())
                        .select(PROBLEM, false));
        assertTrue(e.getMessage().contains("'gpu' is unavailable: no libcuda.so.1"), e.getMessage());

        e = assertThrows(NoBackendException.class,
                () -> selector(List.of(good), Map.of("starling.backend", "nd4j"), Map.of()).select(PROBLEM, false));
        assertTrue(e.getMessage().contains("'nd4j' is not on the class path") && e.getMessage().contains("good"));

        SparseAttention noCausal = new FakeBackends.Fake("fast", 20, Availability.available(), FakeBackends.noCausal());
        UnsupportedOperationException u = assertThrows(UnsupportedOperationException.class,
                () -> selector(List.of(good, noCausal), Map.of("starling.backend", "fast"), Map.of()).select(CAUSAL, false));
        assertTrue(u.getMessage().contains("CAUSAL"), u.getMessage());
    }

    @Test
    void aFasterBackendTheUserCanEnableIsNamedOncePerProcess() {
        SparseAttention slow = new FakeBackends.Fake("slowpoke", 5, Availability.available(), FakeBackends.fp32());
        SparseAttention fixable = new FakeBackends.Fake("quickfix", 60,
                Availability.fixable("module m is not in the boot layer", "start the JVM with --add-modules m"),
                FakeBackends.fp32());
        SparseAttention broken = new FakeBackends.Fake("brokenfast", 70, Availability.unavailable("no device"),
                FakeBackends.fp32());
        List<String> logged = new ArrayList<>();
        Logger logger = Logger.getLogger(BackendSelector.LOGGER);
        Handler handler = new Handler() {
            @Override public void publish(LogRecord r) {
                logged.add(r.getLevel() + " " + r.getMessage());
            }
            @Override public void flush() { }
            @Override public void close() { }
        };
        logger.addHandler(handler);
        try {
            BackendSelector s = selector(List.of(slow, fixable, broken), Map.of(), Map.of());
            assertSame(slow, s.select(PROBLEM, false));
            assertSame(slow, s.select(PROBLEM, false));
            assertSame(slow, selector(List.of(slow, fixable), Map.of(), Map.of()).select(PROBLEM, false));
        } finally {
            logger.removeHandler(handler);
        }
        assertEquals(List.of("WARNING Starling backend 'quickfix' (priority 60) would be used but is unavailable:"
                + " module m is not in the boot layer; start the JVM with --add-modules m; using 'slowpoke' (priority 5)"
                + " instead"), logged, "one line, once, naming the remedy; an unfixable reason (no device) is not news");
    }

    @Test
    void nothingFitsListsEveryBackendAndWhy() {
        SparseAttention noCausal = new FakeBackends.Fake("fast", 20, Availability.available(), FakeBackends.noCausal());
        NoBackendException e = assertThrows(NoBackendException.class,
                () -> selector(List.of(noCausal, new FakeBackends.Missing()), Map.of(), Map.of()).select(CAUSAL, false));
        assertTrue(e.getMessage().contains("gpu (priority 100): unavailable: no libcuda.so.1"), e.getMessage());
        assertTrue(e.getMessage().contains("fast (priority 20): does not support CAUSAL"), e.getMessage());
        e = assertThrows(NoBackendException.class, () -> selector(List.of(), Map.of(), Map.of()).select(PROBLEM, false));
        assertTrue(e.getMessage().contains("starling-backend-reference"), e.getMessage());
    }

    @Test
    void brokenProvidersNeverHideTheOthers(@TempDir Path dir) throws Exception {
        Path services = dir.resolve("META-INF/services");
        Files.createDirectories(services);
        Files.writeString(services.resolve(SparseAttention.class.getName()), String.join("\n",
                "com.example.DoesNotExist",
                FakeBackends.ThrowingConstructor.class.getName(),
                FakeBackends.ThrowingAvailability.class.getName(),
                FakeBackends.Good.class.getName()) + "\n");
        try (URLClassLoader loader = new URLClassLoader(new URL[] {dir.toUri().toURL()}, getClass().getClassLoader())) {
            // Only this loader's own services file: the parent has none for SparseAttention in api tests.
            BackendSelector s = BackendSelector.discover(loader, k -> null, k -> null);
            List<BackendReport> reports = s.reports();
            assertEquals(4, reports.size(), reports.toString());
            assertEquals("good", s.select(PROBLEM, false).name());
            BackendReport flaky = reports.stream().filter(r -> r.name().equals("flaky")).findFirst().orElseThrow();
            assertFalse(flaky.usable());
            assertTrue(flaky.availability().reason().contains("no native library"), flaky.availability().reason());
            assertTrue(reports.stream().anyMatch(r -> r.name().contains("DoesNotExist") && !r.usable()), reports.toString());
            assertTrue(reports.stream().anyMatch(r -> r.availability().reason().contains("boom in constructor")),
                    reports.toString());
        }
    }

    @Test
    void ofTwoBackendsWithOneNameTheFirstOnTheClassPathIsUsedWhateverItsPriority(@TempDir Path dir) throws Exception {
        // AlsoGood (priority 7) outranks Good (priority 5) but comes second on the class path.
        try (URLClassLoader loader = ProviderFolder.loader(dir, SparseAttention.class,
                FakeBackends.Good.class.getName(), FakeBackends.AlsoGood.class.getName())) {
            BackendSelector named = BackendSelector.discover(loader, Map.of("starling.backend", "good")::get, k -> null);
            assertEquals(FakeBackends.Good.class, named.select(PROBLEM, false).getClass());
            BackendSelector unnamed = BackendSelector.discover(loader, k -> null, k -> null);
            assertEquals(FakeBackends.Good.class, unnamed.select(PROBLEM, false).getClass());
            BackendReport duplicate = unnamed.reports().stream().filter(r -> !r.usable()).findFirst().orElseThrow();
            assertEquals("good", duplicate.name());
            assertTrue(duplicate.availability().reason().contains("duplicate backend name 'good'")
                    && duplicate.availability().reason().contains(FakeBackends.Good.class.getName())
                    && duplicate.availability().reason().contains(FakeBackends.AlsoGood.class.getName()),
                    duplicate.availability().reason());
        }
    }

    @Test
    void nullOrThrowingAnswersMakeABackendUnavailableWithTheReason() {
        BackendSelector s = selector(List.of(new FakeBackends.NullCapabilities(), new FakeBackends.NullAvailability(),
                new FakeBackends.ThrowingCapabilities(), new FakeBackends.NullName(), new FakeBackends.Good()), Map.of(), Map.of());
        assertEquals("good", s.select(PROBLEM, false).name());
        Map<String, String> reasons = new java.util.HashMap<>();
        s.reports().forEach(r -> reasons.put(r.name(), r.availability().toString()));
        assertEquals("unavailable: capabilities() returned null", reasons.get("nocaps"));
        assertEquals("unavailable: availability() returned null", reasons.get("noavail"));
        assertTrue(reasons.get("badcaps").contains("capabilities() threw IllegalStateException: no capabilities today"),
                reasons.toString());
        assertTrue(reasons.get(FakeBackends.NullName.class.getName()).contains("name() returned null"), reasons.toString());
        NoBackendException e = assertThrows(NoBackendException.class,
                () -> selector(List.of(new FakeBackends.NullCapabilities()), Map.of("starling.backend", "nocaps"), Map.of())
                        .select(PROBLEM, false));
        assertTrue(e.getMessage().contains("capabilities() returned null"), e.getMessage());
    }

    @Test
    void aBackendWhoseSuperclassIsMissingIsListedByClassAndTheOthersStillRun(@TempDir Path dir) throws Exception {
        try (URLClassLoader loader = ProviderFolder.loader(dir, SparseAttention.class,
                List.of(FakeBackends.Orphan.class.getName(), FakeBackends.Good.class.getName()),
                List.of(FakeBackends.Orphan.class), List.of(FakeBackends.HiddenBase.class))) {
            BackendSelector s = BackendSelector.discover(loader, k -> null, k -> null);
            assertEquals("good", s.select(PROBLEM, false).name());
            BackendReport orphan = s.reports().stream().filter(r -> r.name().equals(FakeBackends.Orphan.class.getName()))
                    .findFirst().orElseThrow();
            assertTrue(orphan.availability().reason().contains("NoClassDefFoundError"), orphan.availability().reason());
        }
    }
}
