/**
 * NumPy's legacy global random number generator ({@code np.random.seed}, {@code np.random.permutation}),
 * reimplemented bit for bit so that the faithful BigBird patterns ({@code bigbird_hf},
 * {@code bigbird_google}) draw exactly the blocks Hugging Face's and Google's Python code draw.
 *
 * <p>An implementation detail of {@link dev.starling.api.pattern}, not part of Starling's API: it
 * may change or move without notice. It is public only so that the pattern package can use it.
 */
package dev.starling.api.pattern.numpy;
