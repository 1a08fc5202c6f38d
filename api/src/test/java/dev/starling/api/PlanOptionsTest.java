package dev.starling.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Typed options: parsing, checking, defaults from properties, and layering. */
class PlanOptionsTest {
    private static final Option<Integer> THREADS = Option.positiveInt("threads", "starling.test.threads", () -> 4, "t");
    private static final Option<Boolean> FAST = Option.flag("fast", null, "f");
    private static final List<Option<?>> KNOWN = List.of(THREADS, FAST);

    @Test
    void valuesAreCheckedAndLayered() {
        PlanOptions o = PlanOptions.parse("x", KNOWN, List.of("threads = 2", "fast=TRUE"));
        assertEquals(2, o.get(THREADS));
        assertTrue(o.get(FAST));
        assertEquals(4, PlanOptions.none().get(THREADS));
        PlanOptions over = PlanOptions.none().with(THREADS, 7).over(o);
        assertEquals(7, over.get(THREADS));
        assertTrue(over.get(FAST));
        assertEquals("threads=7, fast=true", over.toString());
        assertFalse(PlanOptions.none().isSet(THREADS));
    }

    @Test
    void badValuesNameTheOption() {
        for (String bad : new String[] {"0", "-1", "", "1.5", "٣", "9999999999"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> THREADS.parse(bad), bad);
            assertTrue(e.getMessage().startsWith("option threads "), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> PlanOptions.none().with(THREADS, 0));
        assertThrows(IllegalArgumentException.class, () -> FAST.parse("yes"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> PlanOptions.parse("x", KNOWN, List.of("slow=1")));
        assertEquals("x backend has no option 'slow'; it takes threads, fast", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> PlanOptions.parse("x", KNOWN, List.of("threads")));
        assertTrue(e.getMessage().contains("name=value"), e.getMessage());
    }

    @Test
    void propertiesAreDefaultsReadInOnePlace() {
        System.setProperty("starling.test.threads", "3");
        try {
            assertEquals(3, PlanOptions.fromSystemProperties(KNOWN).get(THREADS));
            System.setProperty("starling.test.threads", " ");
            assertFalse(PlanOptions.fromSystemProperties(KNOWN).isSet(THREADS), "blank is unset");
            System.setProperty("starling.test.threads", "lots");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> PlanOptions.fromSystemProperties(KNOWN));
            assertTrue(e.getMessage().startsWith("-Dstarling.test.threads=lots: option threads"), e.getMessage());
        } finally {
            System.clearProperty("starling.test.threads");
        }
    }
}
