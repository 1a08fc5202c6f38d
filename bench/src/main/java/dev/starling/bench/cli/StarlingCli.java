package dev.starling.bench.cli;

import dev.starling.api.pattern.PatternSyntaxException;
import dev.starling.api.selection.NoBackendException;
import dev.starling.api.io.Reasons;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.Path;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The {@code starling} command-line tool.
 *
 * <p>Exit codes: {@value #OK} success; {@value #CHECK_FAILED} a check failed (a backend disagreed
 * with the oracle or broke a conformance rule); {@value #BAD_INPUT} bad usage or input, including
 * files that cannot be read or written (one line on standard error, plus a pointer to
 * {@code --help} for an option error); {@value #INTERNAL_ERROR} an internal error, that is a bug
 * or a failure the tool did not expect (one line; the stack trace only with {@code --verbose});
 * {@value #NOT_RUN} not run: the backend named for a check cannot run on this machine, so it can
 * neither pass nor fail. Running out of Java heap is bad usage ({@value #BAD_INPUT}): one line that says
 * how to give the JVM more.
 */
@Command(name = "starling", mixinStandardHelpOptions = true, version = "starling 0.1.0-SNAPSHOT",
        description = "Block-sparse attention on the JVM: list backends, inspect patterns, run attention on .npy files.%n"
                + "Without a command, runs a short demo on built-in defaults.",
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"0:success", "1:a check failed", "2:bad usage or input (one line on standard error)",
            "3:internal error (a bug; the stack trace with --verbose)", "4:not run: the named backend cannot run here"},
        subcommands = {CompareCommand.class, BackendsCommand.class, PatternCommand.class, RunCommand.class, ConformanceCommand.class, DemoCommand.class,
            CommandLine.HelpCommand.class})
public final class StarlingCli implements Callable<Integer> {
    /** Success. */
    public static final int OK = 0;
    /** A check failed (e.g. a backend disagreed with the oracle). */
    public static final int CHECK_FAILED = 1;
    /** Bad usage or bad input, including a file that cannot be read or written, and a Java heap too small for the job. */
    public static final int BAD_INPUT = 2;
    /** An internal error: a bug, or a failure the tool did not expect (a native error). */
    public static final int INTERNAL_ERROR = 3;
    /** Not run: the backend named for a check cannot run on this machine, so it neither passed nor failed. */
    public static final int NOT_RUN = 4;

    /** Longest line of an error message; longer ones keep their start and end around a "…". */
    static final int MAX_LINE = 1000;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--verbose", scope = CommandLine.ScopeType.INHERIT,
            description = "on an internal error, print the stack trace too")
    boolean verbose;

    /**
     * Runs the demo (the tool without a command).
     *
     * @return {@link #OK}, or {@link #CHECK_FAILED} when the demo's check failed
     */
    @Override
    public Integer call() {
        return new DemoCommand().run(spec.commandLine().getOut());
    }

    /**
     * Builds the command line with Starling's exit-code and error mapping. Arguments are taken
     * literally: picocli's {@code @file} expansion is off, so an argument starting with {@code @}
     * is never read as a file of arguments.
     *
     * @return the configured command line
     */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new StarlingCli());
        cl.setExpandAtFiles(false);
        cl.registerConverter(Path.class, StarlingCli::filePath);
        cl.setParameterExceptionHandler((ex, args) -> {
            CommandLine line = ex.getCommandLine();
            PrintWriter err = line.getErr();
            String name = line.getCommandSpec().qualifiedName();
            String message = ex.getMessage() == null ? ex.getClass().getSimpleName() : ex.getMessage();
            if (ex instanceof CommandLine.UnmatchedArgumentException u && !u.getSuggestions().isEmpty()) {
                List<String> s = u.getSuggestions();
                message += " (did you mean " + s.stream().limit(5).collect(Collectors.joining(", ")) + "?)";
            }
            err.println(name + ": " + clip(flatten(message)));
            err.println("Try '" + name + " --help' for more information.");
            err.flush();
            return BAD_INPUT;
        });
        cl.setExecutionExceptionHandler((ex, line, parse) -> report(unwrap(ex), line.getErr(), verbose(parse)));
        // picocli hands only Exceptions to the handler above; an Error (AssertionError, StackOverflowError,
        // OutOfMemoryError) would escape execute() with its whole trace.
        cl.setExecutionStrategy(parse -> {
            try {
                return new CommandLine.RunLast().execute(parse);
            } catch (Error e) {
                return report(e, parse.commandSpec().commandLine().getErr(), verbose(parse));
            }
        });
        return cl;
    }

    /**
     * A file option's value as a path. Every path option of the tool names a file, so an empty value and a
     * value ending in a slash (which {@link Path#of} would silently drop: {@code o.npy/} names a folder)
     * are refused here, before the text becomes a path.
     *
     * @param text the option's value as given
     * @return the path
     * @throws CommandLine.TypeConversionException for an empty value or one that ends with a separator
     */
    static Path filePath(String text) {
        if (text.isEmpty()) {
            throw new CommandLine.TypeConversionException("empty value: the option needs a file name");
        }
        if (text.endsWith("/") || text.endsWith(java.io.File.separator)) {
            throw new CommandLine.TypeConversionException("'" + text + "' ends with '/', so it names a folder: the "
                    + "option needs a file name");
        }
        return Path.of(text);
    }

    /**
     * Prints one line for a failure and chooses the exit code: {@link #BAD_INPUT} for bad input,
     * {@link #INTERNAL_ERROR} (with the stack trace when {@code verbose}) for anything else.
     */
    static int report(Throwable ex, PrintWriter err, boolean verbose) {
        if (isBadInput(ex)) {
            err.println("starling: " + message(ex));
            err.flush();
            return BAD_INPUT;
        }
        if (ex instanceof OutOfMemoryError oom && RunCommand.isThreadLimit(oom)) {
            // Not the heap: the system would not give the JVM another thread.
            err.println("starling: cannot start another thread (" + oneLine(ex) + "): the system's limit on threads "
                    + "or processes was reached (ulimit -u, a container's pids limit), not the Java heap; run fewer jobs "
                    + "at once or give the backend fewer threads");
            if (verbose) {
                ex.printStackTrace(err);
            }
            err.flush();
            return BAD_INPUT;
        }
        if (ex instanceof OutOfMemoryError) {
            // A heap too small for the job is a setting to change, not a bug: one line, no trace (unless asked).
            long max = Runtime.getRuntime().maxMemory();
            err.println("starling: out of memory (" + oneLine(ex) + ") with this JVM's " + String.format(java.util.Locale.ROOT,
                    "%.1f", max / 1073741824.0) + " GiB of heap; give it more with STARLING_JAVA_OPTS=-Xmx<size>, e.g. "
                    + "STARLING_JAVA_OPTS=-Xmx" + Math.max(2, 2 * (max >> 30)) + "g ./starling ...");
            if (verbose) {
                ex.printStackTrace(err);
            }
            err.flush();
            return BAD_INPUT;
        }
        String what = "internal error (a bug): " + ex.getClass().getName() + (ex.getMessage() == null ? "" : ": " + oneLine(ex));
        err.println("starling: " + clip(what) + (verbose ? "" : " (run with --verbose for the stack trace)"));
        if (verbose) {
            ex.printStackTrace(err);
        }
        err.flush();
        return INTERNAL_ERROR;
    }

    /**
     * Whether a failure is bad usage or bad input, as opposed to a bug. Only known kinds count:
     * a rejected argument ({@link IllegalArgumentException}, with {@link PatternSyntaxException}),
     * a feature the chosen backend lacks ({@link UnsupportedOperationException}, DESIGN section 5),
     * no backend that fits ({@link NoBackendException}), and a file that cannot be read or written
     * ({@link IOException}, with {@code NpyFormatException} and {@code NoSuchFileException}). Any
     * other {@link IllegalStateException}, a {@link NullPointerException} or an {@link Error} is a bug.
     *
     * @param ex the failure
     * @return whether it is the user's input that was wrong
     */
    static boolean isBadInput(Throwable ex) {
        return ex instanceof IllegalArgumentException || ex instanceof UnsupportedOperationException
                || ex instanceof NoBackendException || ex instanceof IOException || ex instanceof UncheckedIOException;
    }

    /** The user-facing message of a bad-input failure: one line, except a pattern error's caret drawing. */
    static String message(Throwable ex) {
        if (ex instanceof UncheckedIOException u && u.getCause() != null && (u.getMessage() == null
                || u.getMessage().equals(u.getCause().toString()))) {
            ex = u.getCause();
        }
        if (ex instanceof IOException io) {
            return clip(flatten(ioMessage(io)));
        }
        if (ex instanceof PatternSyntaxException) {
            // Already clipped around the error position; keep the caret drawing, bound each line.
            return ex.getMessage().strip().lines().map(StarlingCli::clip).collect(Collectors.joining("\n"));
        }
        return clip(oneLine(ex));
    }

    /**
     * An I/O error as {@code "FILE: cause"} in plain words ({@code "o.npy: no such file or
     * directory"}, {@code "x: is a directory"}); a message the tool wrote itself is kept.
     */
    static String ioMessage(IOException e) {
        return Reasons.message(e);
    }

    private static String oneLine(Throwable ex) {
        return flatten(ex.getMessage() == null ? ex.getClass().getSimpleName() : ex.getMessage().strip());
    }

    /** Line breaks become " | " and other control characters a space, so a message stays on one line. */
    static String flatten(String s) {
        StringBuilder sb = new StringBuilder(Math.min(s.length(), 4 * MAX_LINE));
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\r' && i + 1 < s.length() && s.charAt(i + 1) == '\n') {
                continue;
            }
            sb.append(c == '\n' || c == '\r' ? " | " : Character.isISOControl(c) ? " " : String.valueOf(c));
        }
        return sb.toString();
    }

    /** A line of at most {@link #MAX_LINE} characters: the start and the end, a "…" between. */
    static String clip(String line) {
        if (line.length() <= MAX_LINE) {
            return line;
        }
        int tail = MAX_LINE / 4;
        return line.substring(0, MAX_LINE - tail - 1) + "…" + line.substring(line.length() - tail);
    }

    private static Throwable unwrap(Exception ex) {
        Throwable t = ex;
        while (t instanceof CommandLine.ExecutionException && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    /** Whether {@code --verbose} was given on the tool or on any subcommand. */
    private static boolean verbose(CommandLine.ParseResult parse) {
        for (CommandLine.ParseResult p = parse; p != null; p = p.subcommand()) {
            if (p.hasMatchedOption("--verbose")) {
                return true;
            }
        }
        return false;
    }

    /**
     * Runs the tool and exits with its code.
     *
     * @param args command-line arguments
     */
    public static void main(String[] args) {
        // Backend warnings (java.util.logging) as one line: "WARNING: ...".
        if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
            System.setProperty("java.util.logging.SimpleFormatter.format", "%4$s: %5$s%n");
        }
        int code;
        try {
            code = commandLine().execute(args);
        } catch (Throwable t) {
            // Last resort: an Error while picocli itself parses the arguments.
            PrintWriter err = new PrintWriter(System.err, true);
            code = report(t, err, List.of(args).contains("--verbose"));
        }
        System.exit(code);
    }
}
