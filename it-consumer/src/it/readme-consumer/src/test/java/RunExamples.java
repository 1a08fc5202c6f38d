import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * Runs the documented programs (the README's example, the guide's fused-projection and off-heap
 * examples) and checks that each prints what the docs say. A plain main (run by exec:java, see
 * invoker.properties) because the documented pom, which this project is, has no test framework.
 */
public final class RunExamples {
    private RunExamples() {
    }

    private interface Program {
        void main(String[] args) throws Exception;
    }

    public static void main(String[] args) throws Exception {
        expect(run(Example::main), "backend \\w+: out\\[0, 0, 0, 0\\] = -?\\d+\\.\\d{4}");
        // The guide says: bit for bit on a backend that computes in float32 (here the reference backend).
        expect(run(FusedExample::main), "backend reference: fused views against packed copies, largest difference 0\\.0e\\+00");
        expect(run(OffHeapExample::main), "off-heap: out\\[0, 0, 0, 0\\] = (-?\\d+\\.\\d{4}) \\(also result\\.getFloat\\(0\\) = \\1\\)");
        System.out.println("RunExamples: the three documented programs printed what the docs say");
    }

    private static void expect(String printed, String regex) {
        if (!printed.strip().matches(regex)) {
            throw new AssertionError("expected a line matching " + regex + " but the program printed: " + printed);
        }
    }

    private static String run(Program program) throws Exception {
        PrintStream old = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            program.main(new String[0]);
        } finally {
            System.setOut(old);
        }
        String printed = captured.toString(StandardCharsets.UTF_8);
        old.print(printed);
        return printed;
    }
}
