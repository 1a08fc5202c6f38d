package dev.starling.api.selection;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.Feature;
import dev.starling.api.SparseAttention;
import dev.starling.api.pattern.BlockLayout;
import dev.starling.api.spi.FoundProvider;
import dev.starling.api.spi.NamedProviders;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.UnaryOperator;

/**
 * Discovers backends through {@link java.util.ServiceLoader} and chooses one (DESIGN section 4): the one
 * place where this decision is made.
 *
 * <ol>
 *   <li>A name from the system property {@value #PROPERTY} or, when that is unset, the
 *       environment variable {@value #ENVIRONMENT}. A named backend that is missing, unavailable
 *       or lacks a capability the problem needs is an error that says why: no silent fallback.</li>
 *   <li>Otherwise the highest-priority available backend whose capabilities fit the problem
 *       (ties broken by name). When none fits, the error lists every backend and why each was
 *       refused. When a backend that would outrank the chosen one is unavailable for a reason the
 *       user can fix ({@link Availability#remedy()}, e.g. {@code vector} without
 *       {@code --add-modules jdk.incubator.vector}), a warning (logger {@value #LOGGER}) says so and
 *       how to fix it, once per process and backend: the slower choice is never silent.</li>
 * </ol>
 *
 * <p>Backends are found by {@link NamedProviders}, so each provider is loaded, instantiated and
 * named in its own try, and the scan is cached per class loader. A provider that cannot be used
 * (a broken jar, a {@code null} or blank name, or a second provider of a name already taken)
 * is reported as unavailable with the reason and never hides the others. Of two backends with one
 * name, the first on the class path is the one used, by name or by priority; the other is
 * reported unavailable with the reason {@code "duplicate backend name ..."}, and a warning names
 * both classes and their jars. Probing ({@code priority()}, {@code availability()},
 * {@code capabilities()}) is in a try too: one that throws or returns {@code null} makes the
 * backend unavailable with the reason.
 */
public final class BackendSelector {
    /** System property naming the backend to use. */
    public static final String PROPERTY = "starling.backend";
    /** Environment variable naming the backend to use when the property is unset. */
    public static final String ENVIRONMENT = "STARLING_BACKEND";
    /** Logger of the notice that a faster backend could be enabled. */
    public static final String LOGGER = "dev.starling.api.selection";
    private static final System.Logger LOG = System.getLogger(LOGGER);
    /** Backends already named in a notice in this process: each is named once. */
    private static final Set<String> NOTICED = ConcurrentHashMap.newKeySet();
    private static final NamedProviders<SparseAttention> BACKENDS =
            NamedProviders.of(SparseAttention.class, "backend", SparseAttention::name, List.of());

    private final List<BackendReport> reports;
    private final UnaryOperator<String> properties;
    private final UnaryOperator<String> environment;

    private BackendSelector(List<BackendReport> reports, UnaryOperator<String> properties,
                            UnaryOperator<String> environment) {
        this.reports = List.copyOf(reports);
        this.properties = properties;
        this.environment = environment;
    }

    /**
     * Discovers the backends visible to the context class loader, with the real system
     * properties and environment.
     *
     * @return the selector
     */
    public static BackendSelector discover() {
        return of(report(BACKENDS.find()), System::getProperty, System::getenv);
    }

    /**
     * Discovers the backends registered in {@code loader}, reading configuration through the given
     * functions (for tests and embedding).
     *
     * @param loader where to look for {@code META-INF/services/dev.starling.api.SparseAttention}
     * @param properties system property lookup
     * @param environment environment variable lookup
     * @return the selector
     */
    public static BackendSelector discover(ClassLoader loader, UnaryOperator<String> properties,
                                           UnaryOperator<String> environment) {
        return of(report(BACKENDS.find(loader)), properties, environment);
    }

    private static List<BackendReport> report(List<FoundProvider<SparseAttention>> found) {
        List<BackendReport> reports = new ArrayList<>(found.size());
        for (FoundProvider<SparseAttention> f : found) {
            reports.add(probe(f));
        }
        return reports;
    }

    /**
     * A selector over already-created backends (for tests and embedding). Unlike discovery, it
     * does not look for duplicate names: the caller chose the backends.
     *
     * @param backends {@link SparseAttention} instances or {@link BackendReport}s. Not modified.
     * @param properties system property lookup
     * @param environment environment variable lookup
     * @return the selector
     */
    public static BackendSelector of(List<?> backends, UnaryOperator<String> properties, UnaryOperator<String> environment) {
        List<BackendReport> reports = new ArrayList<>();
        for (Object o : backends) {
            reports.add(o instanceof BackendReport r ? r : probe((SparseAttention) o));
        }
        reports.sort(Comparator.comparingInt(BackendReport::priority).reversed().thenComparing(BackendReport::name));
        return new BackendSelector(reports, properties, environment);
    }

    /**
     * Asks one backend for its name, priority, availability and capabilities, turning anything it
     * throws, and a {@code null} or blank name, availability or capabilities, into an unavailable
     * report with the reason.
     *
     * @param backend the backend
     * @return the report
     */
    public static BackendReport probe(SparseAttention backend) {
        return probe(BACKENDS.named(backend));
    }

    private static BackendReport probe(FoundProvider<SparseAttention> found) {
        if (!found.usable()) {
            return unavailable(found.label(), Integer.MIN_VALUE, found.problem() + " (" + found.origin() + ")");
        }
        SparseAttention backend = found.instance();
        int priority = Integer.MIN_VALUE;
        String step = "priority()";
        try {
            priority = backend.priority();
            step = "availability()";
            Availability availability = backend.availability();
            step = "capabilities()";
            Capabilities capabilities = backend.capabilities();
            if (availability == null || capabilities == null) {
                return unavailable(found.name(), priority, (availability == null ? "availability()" : "capabilities()")
                        + " returned null");
            }
            return new BackendReport(found.name(), priority, availability, capabilities, backend);
        } catch (Throwable t) {
            return unavailable(found.name(), priority, step + " threw " + NamedProviders.describe(t));
        }
    }

    private static BackendReport unavailable(String name, int priority, String reason) {
        return new BackendReport(name, priority, Availability.unavailable(reason), null, null);
    }

    /** @return every backend found, highest priority first */
    public List<BackendReport> reports() {
        return reports;
    }

    /** @return the configured backend name, or empty; the property wins over the environment */
    public Optional<String> requestedName() {
        String p = properties.apply(PROPERTY);
        if (p != null && !p.isBlank()) {
            return Optional.of(p.strip().toLowerCase());
        }
        String e = environment.apply(ENVIRONMENT);
        return e != null && !e.isBlank() ? Optional.of(e.strip().toLowerCase()) : Optional.empty();
    }

    /**
     * The backend with this name: of two with one name, the first on the class path (the other
     * is reported unavailable as a duplicate).
     *
     * @param name a backend name
     * @return the available backend
     * @throws NoBackendException if it is missing or unavailable, saying why
     */
    public SparseAttention byName(String name) {
        return usableNamed(name).backend();
    }

    private BackendReport usableNamed(String name) {
        for (BackendReport r : reports) {
            if (r.name().equals(name)) {
                if (!r.usable()) {
                    throw new NoBackendException("backend '" + name + "' is " + r.availability() + "\n" + listing(null, Set.of()));
                }
                return r;
            }
        }
        throw new NoBackendException("backend '" + name + "' is not on the class path\n" + listing(null, Set.of()));
    }

    /**
     * Chooses the backend for a problem.
     *
     * @param problem the problem. Not modified.
     * @param wantsLse whether the caller will ask for the LSE output
     * @return the chosen backend
     * @throws NoBackendException when the named backend is missing or unavailable, or nothing fits
     * @throws UnsupportedOperationException when the named backend lacks a capability the problem needs
     */
    public SparseAttention select(AttentionProblem problem, boolean wantsLse) {
        return select(problem, wantsLse, false);
    }

    /**
     * Chooses the backend for a problem, also for gradients.
     *
     * @param problem the problem. Not modified.
     * @param wantsLse whether the caller will ask for the LSE output
     * @param wantsBackward whether the caller will call {@code backward}
     * @return the chosen backend
     * @throws NoBackendException when the named backend is missing or unavailable, or nothing fits
     * @throws UnsupportedOperationException when the named backend lacks a capability the problem needs
     */
    public SparseAttention select(AttentionProblem problem, boolean wantsLse, boolean wantsBackward) {
        EnumSet<Feature> needed = Capabilities.needs(problem, null);
        if (wantsLse) {
            needed.add(Feature.LSE);
        }
        if (wantsBackward) {
            needed.add(Feature.BACKWARD);
        }
        return select(problem, needed);
    }

    /**
     * Chooses the backend for a problem and its layout ({@link Feature#BLOCK_COUNTS} when the layout
     * counts a block twice) and the call's own features.
     *
     * @param problem the problem. Not modified.
     * @param layout its layout. Not modified.
     * @param call features of the call, e.g. {@link Feature#LSE}, {@link Feature#BACKWARD}
     * @return the chosen backend
     * @throws NoBackendException when the named backend is missing or unavailable, or nothing fits
     * @throws UnsupportedOperationException when the named backend lacks a feature the call needs
     */
    public SparseAttention select(AttentionProblem problem, BlockLayout layout, Feature... call) {
        return select(problem, Capabilities.needs(problem, layout, call));
    }

    private SparseAttention select(AttentionProblem problem, Set<Feature> needed) {
        Optional<String> requested = requestedName();
        if (requested.isPresent()) {
            BackendReport named = usableNamed(requested.get());
            Optional<String> why = named.capabilities().missing(problem, needed);
            if (why.isPresent()) {
                throw new UnsupportedOperationException("backend '" + requested.get() + "' (set by -D" + PROPERTY
                        + " or " + ENVIRONMENT + ") " + why.get() + " needed by " + problem);
            }
            return named.backend();
        }
        List<BackendReport> fixable = new ArrayList<>();
        for (BackendReport r : reports) {
            boolean fits = r.capabilities() != null && r.capabilities().missing(problem, needed).isEmpty();
            if (r.usable() && fits) {
                fixable.forEach(f -> notice(f, r));
                return r.backend();
            }
            if (fits && r.availability().remedy().isPresent()) {
                fixable.add(r);
            }
        }
        throw new NoBackendException("no backend can run " + problem
                + (needed.contains(Feature.BACKWARD) ? " with gradients" : "") + "\n"
                + listing(problem, needed)
                + (reports.isEmpty() ? "\nput a Starling backend jar (e.g. starling-backend-reference) on the class path" : ""));
    }

    /** One line, once per process and backend, as Lucene does for its Vector API path. */
    private static void notice(BackendReport faster, BackendReport chosen) {
        if (NOTICED.add(faster.name())) {
            LOG.log(System.Logger.Level.WARNING, "Starling backend '" + faster.name() + "' (priority " + faster.priority()
                    + ") would be used but is unavailable: " + faster.availability().reason() + "; using '"
                    + chosen.name() + "' (priority " + chosen.priority() + ") instead");
        }
    }

    private String listing(AttentionProblem problem, Set<Feature> needed) {
        StringBuilder sb = new StringBuilder("backends found:");
        if (reports.isEmpty()) {
            sb.append(" none");
        }
        for (BackendReport r : reports) {
            sb.append("\n  ").append(r.name());
            if (r.priority() != Integer.MIN_VALUE) {
                sb.append(" (priority ").append(r.priority()).append(")");
            }
            sb.append(": ");
            if (!r.usable()) {
                sb.append(r.availability());
            } else if (problem != null) {
                sb.append(r.capabilities().missing(problem, needed).orElse("available"));
            } else {
                sb.append("available");
            }
        }
        return sb.toString();
    }
}
