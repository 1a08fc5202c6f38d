/**
 * The files a command touches, as the operating system will reach them: {@link
 * dev.starling.api.io.RealFile} resolves a path through its links and {@code ..}; {@link
 * dev.starling.api.io.TouchedFiles} is the one policy the {@code starling} tool and the Spark job
 * apply to their inputs and outputs before anything is computed (every file resolved, inputs
 * readable, outputs writable, no output the same file as an input or another output); {@link
 * dev.starling.api.io.Reasons} words file errors for one-line messages.
 */
package dev.starling.api.io;
