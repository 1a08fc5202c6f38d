/**
 * The tool's pictures, drawn with Java2D into PNG files, headless: time against length
 * ({@link dev.starling.bench.draw.ComparePlot}, {@code starling compare --plot}).
 */
package dev.starling.bench.draw;
