package dev.starling.bench.cli;

import dev.starling.api.npy.NpyFormatException;
import dev.starling.api.pattern.PatternSyntaxException;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code starling} command-line tool. Exit codes: 0 success, 1 a check failed, 2 bad usage
 * or input (one line on standard error, never a stack trace).
 */
@Command(name = "starling", mixinStandardHelpOptions = true, version = "starling 0.1.0-SNAPSHOT",
        description = "Block-sparse attention on the JVM: list backends, inspect patterns, run attention on .npy files.%n"
                + "Without a command, runs a short demo on built-in defaults.",
        subcommands = {CompareCommand.class, BackendsCommand.class, PatternCommand.class, RunCommand.class, ConformanceCommand.class, DemoCommand.class,
            CommandLine.HelpCommand.class})
public final class StarlingCli implements Runnable {
    /** A check failed (e.g. a backend disagreed with the oracle). */
    public static final int CHECK_FAILED = 1;
    /** Bad usage or bad input. */
    public static final int BAD_INPUT = 2;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        int code = new DemoCommand().run(spec.commandLine().getOut());
        if (code != 0) {
            throw new CommandLine.ExecutionException(spec.commandLine(), "the demo's check failed");
        }
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
        cl.setExecutionExceptionHandler((ex, line, parse) -> {
            PrintWriter err = line.getErr();
            if (isBadInput(ex)) {
                err.println("starling: " + oneLine(ex));
                return BAD_INPUT;
            }
            err.println("starling: internal error: " + ex);
            ex.printStackTrace(err);
            return CHECK_FAILED;
        });
        return cl;
    }

    static boolean isBadInput(Throwable ex) {
        return ex instanceof IllegalArgumentException || ex instanceof IllegalStateException
                || ex instanceof UnsupportedOperationException || ex instanceof IOException
                || ex instanceof UncheckedIOException || ex instanceof NpyFormatException;
    }

    private static String oneLine(Throwable ex) {
        String m = ex.getMessage() == null ? ex.getClass().getSimpleName() : ex.getMessage().strip();
        // A pattern error keeps its caret drawing; everything else is one line.
        return ex instanceof PatternSyntaxException ? m : m.replace("\n", " | ");
    }

    /**
     * Runs the tool.
     *
     * @param args command-line arguments
     */
    public static void main(String[] args) {
        // Backend warnings (java.util.logging) as one line: "WARNING: ...".
        if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
            System.setProperty("java.util.logging.SimpleFormatter.format", "%4$s: %5$s%n");
        }
        System.exit(commandLine().execute(args));
    }
}
