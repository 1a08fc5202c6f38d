/**
 * The tool's pictures, drawn with Java2D into PNG files, headless: the layout of a pattern
 * ({@link dev.starling.bench.draw.LayoutImage}, {@code starling pattern --png}) and time against
 * length ({@link dev.starling.bench.draw.ComparePlot}, {@code starling compare --plot}).
 */
package dev.starling.bench.draw;
