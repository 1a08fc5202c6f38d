package dev.starling.api.spi;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * A folder that stands for a provider jar on a class path of its own: a
 * {@code META-INF/services} file, and the class files of the classes that must be loaded from
 * it. Classes can also be left out, as when a jar's dependency is missing.
 */
public final class ProviderFolder {
    private ProviderFolder() {
    }

    /**
     * A class loader over {@code folder} whose parent is the test class path.
     *
     * @param folder an empty folder
     * @param service the service interface
     * @param listed class names to list in the services file, in order
     * @param own classes copied into the folder and hidden from the parent, so that they are defined from the folder
     * @param missing classes hidden from the parent and not copied: not on the class path at all
     * @return the loader; close it
     * @throws IOException if the folder cannot be written
     */
    public static URLClassLoader loader(Path folder, Class<?> service, List<String> listed, List<Class<?>> own,
                                        List<Class<?>> missing) throws IOException {
        Path services = folder.resolve("META-INF/services");
        Files.createDirectories(services);
        Files.writeString(services.resolve(service.getName()), String.join("\n", listed) + "\n");
        for (Class<?> c : own) {
            String file = c.getName().replace('.', '/') + ".class";
            Path target = folder.resolve(file);
            Files.createDirectories(target.getParent());
            try (InputStream in = ProviderFolder.class.getClassLoader().getResourceAsStream(file)) {
                Files.write(target, in.readAllBytes());
            }
        }
        Set<String> hidden = Stream.concat(own.stream(), missing.stream()).map(Class::getName).collect(Collectors.toSet());
        ClassLoader parent = new ClassLoader(ProviderFolder.class.getClassLoader()) {
            @Override
            protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
                if (hidden.contains(name)) {
                    throw new ClassNotFoundException(name + " is hidden by the test");
                }
                return super.loadClass(name, resolve);
            }
        };
        return new URLClassLoader(new URL[] {url(folder)}, parent);
    }

    /**
     * A class loader over a folder holding only a services file, whose parent is the test class path.
     *
     * @param folder an empty folder
     * @param service the service interface
     * @param listed class names to list, in order
     * @return the loader; close it
     * @throws IOException if the folder cannot be written
     */
    public static URLClassLoader loader(Path folder, Class<?> service, String... listed) throws IOException {
        return loader(folder, service, List.of(listed), List.of(), List.of());
    }

    private static URL url(Path folder) {
        try {
            return folder.toUri().toURL();
        } catch (MalformedURLException e) {
            throw new UncheckedIOException(e);
        }
    }
}
