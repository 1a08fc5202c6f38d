import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The README's Java example runs and prints one finite number. */
class ExampleTest {
    @Test
    void readmeExampleRuns() {
        PrintStream old = System.out;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            Example.main(new String[0]);
        } finally {
            System.setOut(old);
        }
        String printed = captured.toString(StandardCharsets.UTF_8);
        old.print(printed);
        assertTrue(printed.matches("(?s)backend \\w+: out\\[0, 0, 0, 0\\] = -?\\d+\\.\\d{4}\\s*"), printed);
    }
}
