package dev.starling.spark;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.DelegateToFileSystem;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.util.Progressable;

/**
 * The local disk under the scheme {@code faulty:}, where creating a file whose name contains the
 * configured {@value #FAIL_ON} text fails as a full disk does: a disk that fills up in the middle
 * of a job, for tests.
 */
public final class FaultyFileSystem extends RawLocalFileSystem {
    /** The configuration key: files whose name contains its value cannot be created. */
    static final String FAIL_ON = "starling.test.faulty.fail-on";

    private String failOn;

    @Override
    public void initialize(URI uri, Configuration conf) throws IOException {
        super.initialize(uri, conf);
        failOn = conf.get(FAIL_ON);
    }

    @Override
    public URI getUri() {
        return URI.create("faulty:///");
    }

    @Override
    public String getScheme() {
        return "faulty";
    }

    @Override
    public FSDataOutputStream create(Path f, FsPermission permission, boolean overwrite, int bufferSize, short replication,
                                     long blockSize, Progressable progress) throws IOException {
        fail(f);
        return super.create(f, permission, overwrite, bufferSize, replication, blockSize, progress);
    }

    @Override
    public FSDataOutputStream create(Path f, boolean overwrite, int bufferSize, short replication, long blockSize,
                                     Progressable progress) throws IOException {
        fail(f);
        return super.create(f, overwrite, bufferSize, replication, blockSize, progress);
    }

    private void fail(Path f) throws IOException {
        if (failOn != null && f.getName().contains(failOn)) {
            throw new IOException("No space left on device");
        }
    }

    /** The same for {@code FileContext}, which the job renames through on file systems other than {@code file:}. */
    public static final class Context extends DelegateToFileSystem {
        /**
         * @param uri the file system's URI
         * @param conf the configuration
         * @throws IOException never here
         * @throws URISyntaxException never here
         */
        public Context(URI uri, Configuration conf) throws IOException, URISyntaxException {
            super(uri, new FaultyFileSystem(), conf, "faulty", false);
        }

        @Override
        public int getUriDefaultPort() {
            return -1;
        }
    }
}
