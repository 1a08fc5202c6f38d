package dev.starling.api.spi;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.ref.SoftReference;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URL;
import java.net.URLConnection;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemNotFoundException;
import java.nio.file.Path;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.WeakHashMap;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The providers of one named service interface, found through {@link ServiceLoader}: the one place
 * where Starling locates, instantiates and names providers. Backends
 * ({@code dev.starling.api.SparseAttention}) and pattern names
 * ({@code dev.starling.api.pattern.PatternProvider}) each have one instance of this class.
 *
 * <ul>
 *   <li><b>One broken jar never hides the others.</b> Each provider is located, loaded,
 *       instantiated and named in its own try. Every {@link Throwable} raised on the way
 *       ({@link ServiceConfigurationError}, a {@link LinkageError} such as the
 *       {@link NoClassDefFoundError} of a missing superclass, an {@link ExceptionInInitializerError},
 *       a {@link RuntimeException}) makes that provider a {@link FoundProvider} with the problem,
 *       and the scan goes on. When {@code ServiceLoader} does not say which class failed (a
 *       {@code LinkageError} escapes its iterator bare), the classes listed in the
 *       {@code META-INF/services} files and not yet seen are loaded one by one to name it.</li>
 *   <li><b>A name is required.</b> A provider whose name is {@code null} or blank, or whose
 *       {@code name()} throws, is refused with that reason.</li>
 *   <li><b>One name, one provider.</b> Built-ins come first, then the class path in
 *       {@code ServiceLoader}'s order ({@code META-INF/services} files in class path order, lines
 *       in file order). The first provider of a name is used; every later one with that name is
 *       refused with the problem {@code "duplicate <kind> name '<name>': ..."} naming the class
 *       that is used and where it came from, and a warning names both classes and their jars.
 *       So selecting by name never silently picks another class than the first on the class path.</li>
 *   <li><b>Scanned once per class loader.</b> The result is cached per class loader (this object
 *       stands for one service type), so repeated lookups do not scan again, and the provider
 *       instances are shared. The cache holds a loader softly: one nobody else uses can be
 *       collected.</li>
 *   <li>Each scan logs every refused provider once, as a warning to the {@link System.Logger}
 *       named {@value #LOGGER}.</li>
 * </ul>
 *
 * @param <S> the service type
 */
public final class NamedProviders<S> {
    /** Name of the {@link System.Logger} that receives one warning per refused provider and scan. */
    public static final String LOGGER = "dev.starling.api.spi";
    /** Class name of a provider whose failure did not say which class it was. */
    static final String UNKNOWN_CLASS = "<unknown provider>";
    /** Where a provider came from when that cannot be told. */
    static final String UNKNOWN_SOURCE = "unknown location";
    /** Identical failures in a row after which the scan stops: {@code ServiceLoader} is not making progress. */
    private static final int MAX_REPEATED_FAILURES = 16;
    private static final System.Logger LOG = System.getLogger(LOGGER);

    private final Class<S> type;
    private final String kind;
    private final Function<? super S, String> nameOf;
    private final List<S> builtIns;
    private final Map<ClassLoader, SoftReference<List<FoundProvider<S>>>> cache = new WeakHashMap<>();

    private NamedProviders(Class<S> type, String kind, Function<? super S, String> nameOf, List<S> builtIns) {
        this.type = type;
        this.kind = kind;
        this.nameOf = nameOf;
        this.builtIns = builtIns;
    }

    /**
     * The providers of one service interface. Create one per interface and keep it: it holds the cache.
     *
     * @param type the service interface, as registered in {@code META-INF/services}
     * @param kind what a provider is, for messages, e.g. {@code "backend"}
     * @param nameOf reads a provider's name
     * @param builtIns providers that come before the class path, so their names cannot be taken. Not modified.
     * @param <S> the service type
     * @return the providers, not yet scanned
     */
    public static <S> NamedProviders<S> of(Class<S> type, String kind, Function<? super S, String> nameOf,
                                           List<? extends S> builtIns) {
        return new NamedProviders<>(Objects.requireNonNull(type, "type"), Objects.requireNonNull(kind, "kind"),
                Objects.requireNonNull(nameOf, "nameOf"), List.copyOf(builtIns));
    }

    /**
     * The providers visible to the current thread's context class loader, or, when it has none,
     * to the loader of the service interface.
     *
     * @return built-ins first, then the class path; usable and refused providers alike
     */
    public List<FoundProvider<S>> find() {
        ClassLoader context = Thread.currentThread().getContextClassLoader();
        return find(context != null ? context : type.getClassLoader());
    }

    /**
     * The providers registered in {@code loader}, scanned on the first call for that loader.
     *
     * @param loader where to look for {@code META-INF/services/<type>}; {@code null} means the system class loader
     * @return built-ins first, then the class path; usable and refused providers alike (immutable)
     */
    public List<FoundProvider<S>> find(ClassLoader loader) {
        ClassLoader key = loader != null ? loader : ClassLoader.getSystemClassLoader();
        synchronized (cache) {
            SoftReference<List<FoundProvider<S>>> cached = cache.get(key);
            List<FoundProvider<S>> found = cached != null ? cached.get() : null;
            if (found == null) {
                found = List.copyOf(refuseDuplicates(scan(key)));
                for (FoundProvider<S> f : found) {
                    if (!f.usable()) {
                        LOG.log(System.Logger.Level.WARNING, "Starling " + kind + " provider " + f.origin()
                                + " is not used: " + f.problem());
                    }
                }
                cache.put(key, new SoftReference<>(found));
            }
            return found;
        }
    }

    /**
     * Names one provider created elsewhere (for tests and embedding), with the checks of a scan:
     * the name is read in a try and must not be {@code null} or blank. Duplicates are not looked for.
     *
     * @param provider the provider
     * @return the provider with its name, or refused with the reason
     */
    public FoundProvider<S> named(S provider) {
        Objects.requireNonNull(provider, "provider");
        return instantiate(provider.getClass(), () -> provider);
    }

    /**
     * One line about a failure: its type and message, and its root cause when there is one.
     *
     * @param failure what was thrown
     * @return e.g. {@code "ServiceConfigurationError: ... (caused by IllegalStateException: boom)"}
     */
    public static String describe(Throwable failure) {
        Throwable root = failure;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String line = oneThrowable(failure);
        return root == failure ? line : line + " (caused by " + oneThrowable(root) + ")";
    }

    private static String oneThrowable(Throwable t) {
        return t.getClass().getSimpleName() + (t.getMessage() != null ? ": " + t.getMessage() : "");
    }

    private List<FoundProvider<S>> scan(ClassLoader loader) {
        List<FoundProvider<S>> found = new ArrayList<>();
        for (S builtIn : builtIns) {
            found.add(named(builtIn));
        }
        Map<String, String> listed = null;
        Set<String> seen = new HashSet<>();
        List<Throwable> unnamed = new ArrayList<>();
        String lastFailure = null;
        int repeats = 0;
        try {
            Iterator<ServiceLoader.Provider<S>> it = ServiceLoader.load(type, loader).stream().iterator();
            while (true) {
                ServiceLoader.Provider<S> p;
                try {
                    // hasNext() locates and loads the next class, so it throws too.
                    if (!it.hasNext()) {
                        break;
                    }
                    p = it.next();
                } catch (Throwable t) {
                    String failure = t.toString();
                    repeats = failure.equals(lastFailure) ? repeats + 1 : 0;
                    lastFailure = failure;
                    if (repeats >= MAX_REPEATED_FAILURES) {
                        break;
                    } else if (repeats > 0) {
                        continue;   // the same failure again; naming below finds each class behind it
                    }
                    listed = listed != null ? listed : listed(loader);
                    String className = classNamedIn(t, listed);
                    if (className == null) {
                        unnamed.add(t);
                    } else {
                        seen.add(className);
                        found.add(failed(className, listed.get(className), "could not be loaded: " + describe(t)));
                    }
                    continue;
                }
                seen.add(p.type().getName());
                found.add(instantiate(p.type(), p::get));
            }
        } catch (Throwable t) {
            unnamed.add(t);   // ServiceLoader.load or stream() itself failed
        }
        if (!unnamed.isEmpty()) {
            found.addAll(nameFailures(unnamed, seen, listed != null ? listed : listed(loader), loader));
        }
        return found;
    }

    /** Creates and names one provider; anything thrown on the way becomes its problem. */
    private FoundProvider<S> instantiate(Class<?> providerClass, Supplier<? extends S> create) {
        String className = providerClass.getName();
        String source = sourceOf(providerClass);
        S provider;
        try {
            provider = create.get();
        } catch (Throwable t) {
            return failed(className, source, "could not be instantiated: " + describe(t));
        }
        String name;
        try {
            name = nameOf.apply(provider);
        } catch (Throwable t) {
            return failed(className, source, "name() threw " + describe(t));
        }
        if (name == null || name.isBlank()) {
            return failed(className, source, "name() returned " + (name == null ? "null" : "a blank name"));
        }
        return new FoundProvider<>(className, source, name, provider, null);
    }

    private FoundProvider<S> failed(String className, String source, String problem) {
        return new FoundProvider<>(className, source != null ? source : UNKNOWN_SOURCE, null, null, problem);
    }

    private List<FoundProvider<S>> refuseDuplicates(List<FoundProvider<S>> found) {
        Map<String, FoundProvider<S>> first = new HashMap<>();
        List<FoundProvider<S>> out = new ArrayList<>(found.size());
        for (FoundProvider<S> f : found) {
            FoundProvider<S> winner = f.usable() ? first.putIfAbsent(f.name(), f) : null;
            out.add(winner == null ? f : f.refused("duplicate " + kind + " name '" + f.name() + "': " + winner.origin()
                    + " has the same name and comes first, so it is used; remove one of them from the class path"));
        }
        return out;
    }

    /**
     * Names the classes behind failures that did not say which class failed: each class listed in
     * a services file and not seen during the scan is loaded on its own, and those that fail are
     * reported with their own error. Failures left unnamed are reported as they are.
     */
    private List<FoundProvider<S>> nameFailures(List<Throwable> unnamed, Set<String> seen, Map<String, String> listed,
                                                ClassLoader loader) {
        List<FoundProvider<S>> out = new ArrayList<>();
        for (Map.Entry<String, String> e : listed.entrySet()) {
            if (seen.contains(e.getKey())) {
                continue;
            }
            try {
                Class.forName(e.getKey(), false, loader);
            } catch (Throwable t) {
                out.add(failed(e.getKey(), e.getValue(), "could not be loaded: " + describe(t)));
            }
        }
        for (int i = out.size(); i < unnamed.size(); i++) {
            out.add(failed(UNKNOWN_CLASS, UNKNOWN_SOURCE, "could not be loaded: " + describe(unnamed.get(i))));
        }
        return out;
    }

    /** The listed class that a {@link ServiceConfigurationError} message names ("Provider a.B not found"), or null. */
    private static String classNamedIn(Throwable t, Map<String, String> listed) {
        if (!(t instanceof ServiceConfigurationError) || t.getMessage() == null) {
            return null;
        }
        for (String word : t.getMessage().split("[\\s:]+")) {
            if (listed.containsKey(word)) {
                return word;
            }
        }
        return null;
    }

    /**
     * Every class named in this type's {@code META-INF/services} files, in the order
     * {@code ServiceLoader} reads them, with the jar or folder of the first file naming it.
     * A file that cannot be read is skipped here: {@code ServiceLoader} reports it.
     */
    private Map<String, String> listed(ClassLoader loader) {
        Map<String, String> names = new LinkedHashMap<>();
        try {
            Enumeration<URL> files = loader.getResources("META-INF/services/" + type.getName());
            while (files.hasMoreElements()) {
                URL file = files.nextElement();
                URLConnection connection = file.openConnection();
                connection.setUseCaches(false);   // as ServiceLoader does: keep no jar open
                try (BufferedReader r = new BufferedReader(
                        new InputStreamReader(connection.getInputStream(), StandardCharsets.UTF_8))) {
                    for (String line = r.readLine(); line != null; line = r.readLine()) {
                        int comment = line.indexOf('#');
                        String className = (comment >= 0 ? line.substring(0, comment) : line).strip();
                        if (!className.isEmpty()) {
                            names.putIfAbsent(className, servicesFileSource(file));
                        }
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            // Diagnostics only: ServiceLoader reads the same files and reports what is wrong with them.
        }
        return names;
    }

    /** The jar or folder a services file lies in. */
    private static String servicesFileSource(URL file) {
        String url = file.toString();
        if (url.startsWith("jar:") && url.contains("!/")) {
            return path(url.substring("jar:".length(), url.indexOf("!/")));
        }
        int services = url.lastIndexOf("/META-INF/services/");
        return path(services >= 0 ? url.substring(0, services + 1) : url);
    }

    /** The jar or folder a class was loaded from. */
    private static String sourceOf(Class<?> c) {
        try {
            CodeSource cs = c.getProtectionDomain().getCodeSource();
            return cs != null && cs.getLocation() != null ? path(cs.getLocation().toString()) : UNKNOWN_SOURCE;
        } catch (RuntimeException e) {
            return UNKNOWN_SOURCE;
        }
    }

    /** A {@code file:} URL as a path, anything else as it is. */
    private static String path(String url) {
        try {
            URI uri = new URI(url);
            return "file".equals(uri.getScheme()) ? Path.of(uri).toString() : url;
        } catch (URISyntaxException | IllegalArgumentException | FileSystemNotFoundException e) {
            return url;
        }
    }
}
