package dev.starling.bench.draw;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class ComparePlotTest {

    @Test
    void axisBoundsSnapToOneTwoFive() {
        assertEquals(10, ComparePlot.step(10.6, false), 1e-9);
        assertEquals(20, ComparePlot.step(10.6, true), 1e-9);
        assertEquals(5000, ComparePlot.step(2200, true), 1e-9);
        assertEquals(0.2, ComparePlot.step(0.31, false), 1e-12);
        assertEquals(1000, ComparePlot.step(1000, true), 1e-9);
    }
}
