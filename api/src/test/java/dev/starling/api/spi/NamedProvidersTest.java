package dev.starling.api.spi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starling.api.SparseAttention;
import dev.starling.api.selection.FakeBackends;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Locating, instantiating and naming providers: every failure isolated and reported, one provider per name. */
class NamedProvidersTest {
    private static final String GOOD = FakeBackends.Good.class.getName();

    private static NamedProviders<SparseAttention> backends() {
        return NamedProviders.of(SparseAttention.class, "backend", SparseAttention::name, List.of());
    }

    private static FoundProvider<SparseAttention> only(List<FoundProvider<SparseAttention>> found, Class<?> c) {
        List<FoundProvider<SparseAttention>> matches = found.stream().filter(f -> f.className().equals(c.getName())).toList();
        assertEquals(1, matches.size(), found.toString());
        return matches.get(0);
    }

    private static void assertRefused(FoundProvider<SparseAttention> f, String... inProblem) {
        assertFalse(f.usable(), f.toString());
        assertEquals(null, f.instance());
        for (String s : inProblem) {
            assertTrue(f.problem().contains(s), f.problem());
        }
    }

    @Test
    void everyLoadFailureIsReportedByClassAndNeverHidesTheOthers(@TempDir Path dir) throws Exception {
        try (URLClassLoader loader = ProviderFolder.loader(dir, SparseAttention.class,
                List.of(FakeBackends.Orphan.class.getName(), "com.example.DoesNotExist",
                        FakeBackends.FailingStaticInit.class.getName(), FakeBackends.ThrowingConstructor.class.getName(),
                        FakeBackends.class.getName(), GOOD),
                List.of(FakeBackends.Orphan.class), List.of(FakeBackends.HiddenBase.class))) {
            List<FoundProvider<SparseAttention>> found = backends().find(loader);
            assertEquals(6, found.size(), found.toString());
            assertEquals(List.of("good"), found.stream().filter(FoundProvider::usable).map(FoundProvider::name).toList());

            // hasNext() of ServiceLoader's iterator throws the bare NoClassDefFoundError: the class is still named.
            FoundProvider<SparseAttention> orphan = only(found, FakeBackends.Orphan.class);
            assertRefused(orphan, "NoClassDefFoundError", "HiddenBase");
            assertEquals(dir.toString(), orphan.source(), "the folder that lists it and holds it");
            assertRefused(found.stream().filter(f -> f.className().equals("com.example.DoesNotExist")).findFirst()
                    .orElseThrow(), "not found");
            assertRefused(only(found, FakeBackends.FailingStaticInit.class), "boom in static initializer");
            assertRefused(only(found, FakeBackends.ThrowingConstructor.class), "boom in constructor");
            assertRefused(only(found, FakeBackends.class), "not a subtype");
        }
    }

    @Test
    void aNameIsRequired(@TempDir Path dir) throws Exception {
        try (URLClassLoader loader = ProviderFolder.loader(dir, SparseAttention.class,
                FakeBackends.NullName.class.getName(), FakeBackends.BlankName.class.getName(), GOOD)) {
            List<FoundProvider<SparseAttention>> found = backends().find(loader);
            FoundProvider<SparseAttention> nameless = only(found, FakeBackends.NullName.class);
            assertRefused(nameless, "name() returned null");
            assertEquals(FakeBackends.NullName.class.getName(), nameless.label(), "listed by class when it has no name");
            assertRefused(only(found, FakeBackends.BlankName.class), "name() returned a blank name");
            assertTrue(only(found, FakeBackends.Good.class).usable());
        }
    }

    @Test
    void theFirstProviderOfANameWinsAndTheOtherIsReportedLoudly(@TempDir Path dir) throws Exception {
        List<String> warnings = new ArrayList<>();
        Handler handler = new Handler() {
            @Override
            public void publish(LogRecord record) {
                warnings.add(record.getMessage());
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        Logger log = Logger.getLogger(NamedProviders.LOGGER);
        log.addHandler(handler);
        try (URLClassLoader loader = ProviderFolder.loader(dir, SparseAttention.class,
                GOOD, FakeBackends.AlsoGood.class.getName())) {
            List<FoundProvider<SparseAttention>> found = backends().find(loader);
            FoundProvider<SparseAttention> first = only(found, FakeBackends.Good.class);
            FoundProvider<SparseAttention> second = only(found, FakeBackends.AlsoGood.class);
            assertTrue(first.usable());
            assertRefused(second, "duplicate backend name 'good'", first.origin());
            assertEquals("good", second.label());
            String warning = warnings.stream().filter(w -> w.contains("duplicate")).findFirst().orElseThrow();
            assertTrue(warning.contains(first.origin()) && warning.contains(second.origin()), warning);
        } finally {
            log.removeHandler(handler);
        }
    }

    @Test
    void builtInsComeFirstAndKeepTheirNames(@TempDir Path dir) throws Exception {
        NamedProviders<SparseAttention> withBuiltIn = NamedProviders.of(SparseAttention.class, "backend",
                SparseAttention::name, List.of(new FakeBackends.AlsoGood()));
        try (URLClassLoader loader = ProviderFolder.loader(dir, SparseAttention.class, GOOD)) {
            List<FoundProvider<SparseAttention>> found = withBuiltIn.find(loader);
            assertEquals(List.of(FakeBackends.AlsoGood.class.getName(), GOOD),
                    found.stream().map(FoundProvider::className).toList());
            assertTrue(found.get(0).usable());
            assertRefused(found.get(1), "duplicate backend name 'good'");
        }
    }

    @Test
    void scannedOncePerClassLoader(@TempDir Path dir) throws Exception {
        NamedProviders<SparseAttention> providers = backends();
        try (URLClassLoader a = ProviderFolder.loader(dir.resolve("a"), SparseAttention.class, GOOD);
             URLClassLoader b = ProviderFolder.loader(dir.resolve("b"), SparseAttention.class, GOOD)) {
            List<FoundProvider<SparseAttention>> first = providers.find(a);
            Files.writeString(dir.resolve("a/META-INF/services").resolve(SparseAttention.class.getName()), "");
            assertSame(first, providers.find(a), "no second scan: the emptied services file is not read again");
            assertSame(first.get(0).instance(), providers.find(a).get(0).instance());
            assertNotSame(first, providers.find(b));
        }
    }
}
