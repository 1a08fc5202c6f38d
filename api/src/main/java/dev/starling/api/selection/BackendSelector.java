package dev.starling.api.selection;

import dev.starling.api.AttentionProblem;
import dev.starling.api.Availability;
import dev.starling.api.Capabilities;
import dev.starling.api.SparseAttention;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.function.UnaryOperator;

/**
 * Discovers backends through {@link ServiceLoader} and chooses one (DESIGN section 4): the one
 * place where this decision is made.
 *
 * <ol>
 *   <li>A name from the system property {@value #PROPERTY} or, when that is unset, the
 *       environment variable {@value #ENVIRONMENT}. A named backend that is missing, unavailable
 *       or lacks a capability the problem needs is an error that says why: no silent fallback.</li>
 *   <li>Otherwise the highest-priority available backend whose capabilities fit the problem
 *       (ties broken by name). When none fits, the error lists every backend and why each was
 *       refused.</li>
 * </ol>
 *
 * <p>Each provider is instantiated and probed in its own try: a broken jar
 * ({@link ServiceConfigurationError}, a constructor or {@code availability()} that throws)
 * is reported as unavailable with the cause and never hides the others.
 */
public final class BackendSelector {
    /** System property naming the backend to use. */
    public static final String PROPERTY = "starling.backend";
    /** Environment variable naming the backend to use when the property is unset. */
    public static final String ENVIRONMENT = "STARLING_BACKEND";

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
        ClassLoader cl = Thread.currentThread().getContextClassLoader();
        return discover(cl != null ? cl : BackendSelector.class.getClassLoader(), System::getProperty, System::getenv);
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
        List<BackendReport> reports = new ArrayList<>();
        Iterator<SparseAttention> it = ServiceLoader.load(SparseAttention.class, loader).iterator();
        while (true) {
            SparseAttention backend;
            try {
                if (!it.hasNext()) {
                    break;
                }
                backend = it.next();
            } catch (ServiceConfigurationError e) {
                reports.add(new BackendReport(brokenName(e), Integer.MIN_VALUE,
                        Availability.unavailable("provider could not be loaded: " + rootMessage(e)), null, null));
                continue;
            }
            reports.add(probe(backend));
        }
        return of(reports, properties, environment);
    }

    /**
     * A selector over already-created backends (for tests and embedding).
     *
     * @param backends the backends. Not modified.
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
     * throws into an unavailable report.
     *
     * @param backend the backend
     * @return the report
     */
    public static BackendReport probe(SparseAttention backend) {
        String name = backend.getClass().getName();
        int priority = Integer.MIN_VALUE;
        try {
            name = backend.name();
            priority = backend.priority();
            Availability availability = backend.availability();
            if (availability == null) {
                availability = Availability.unavailable("availability() returned null");
            }
            Capabilities capabilities = backend.capabilities();
            return new BackendReport(name, priority, availability, capabilities, backend);
        } catch (RuntimeException | LinkageError e) {
            return new BackendReport(name, priority, Availability.unavailable("probing failed: " + rootMessage(e)), null, null);
        }
    }

    /** The provider class named in a ServiceLoader error ("...: Provider a.b.C not found"). */
    private static String brokenName(ServiceConfigurationError e) {
        String m = e.getMessage() == null ? "" : e.getMessage();
        int at = m.indexOf("Provider ");
        if (at < 0) {
            return "<unknown provider>";
        }
        String rest = m.substring(at + "Provider ".length());
        int space = rest.indexOf(' ');
        return space > 0 ? rest.substring(0, space) : rest;
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        String m = t.getMessage();
        return t == e ? String.valueOf(m) : e.getMessage() + " (caused by " + t.getClass().getSimpleName()
                + (m != null ? ": " + m : "") + ")";
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
     * The backend with this name.
     *
     * @param name a backend name
     * @return the available backend
     * @throws NoBackendException if it is missing or unavailable, saying why
     */
    public SparseAttention byName(String name) {
        for (BackendReport r : reports) {
            if (r.name().equals(name)) {
                if (!r.usable()) {
                    throw new NoBackendException("backend '" + name + "' is " + r.availability() + "\n" + listing(null));
                }
                return r.backend();
            }
        }
        throw new NoBackendException("backend '" + name + "' is not on the class path\n" + listing(null));
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
        Optional<String> requested = requestedName();
        if (requested.isPresent()) {
            SparseAttention backend = byName(requested.get());
            Optional<String> why = backend.capabilities().unsupported(problem, wantsLse);
            if (why.isPresent()) {
                throw new UnsupportedOperationException("backend '" + requested.get() + "' (set by -D" + PROPERTY
                        + " or " + ENVIRONMENT + ") " + why.get() + " needed by " + problem);
            }
            return backend;
        }
        for (BackendReport r : reports) {
            if (r.usable() && r.capabilities().unsupported(problem, wantsLse).isEmpty()) {
                return r.backend();
            }
        }
        throw new NoBackendException("no backend can run " + problem + "\n" + listing(problem)
                + (reports.isEmpty() ? "\nput a Starling backend jar (e.g. starling-backend-reference) on the class path" : ""));
    }

    private String listing(AttentionProblem problem) {
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
                sb.append(r.capabilities().unsupported(problem, false).orElse("available"));
            } else {
                sb.append("available");
            }
        }
        return sb.toString();
    }
}
