package dev.starling.backend.cuda;

import dev.starling.api.Availability;
import dev.starling.api.PlanOptions;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.JCudaDriver;

/**
 * One CUDA device as the backend uses it: probed once (driver, device count, compute capability,
 * kernels in the jar), then its primary context retained and the kernel module loaded once per
 * process. Everything that can fail natively is turned into an {@link Availability} reason or a
 * {@link CudaException}.
 */
final class CudaDevice {
    /** System property choosing the device ordinal (default 0). */
    static final String DEVICE_PROPERTY = "starling.cuda.device";
    static final String KERNELS_RESOURCE = "kernels.fatbin";
    static final String NO_KERNELS = "kernels were not compiled into this jar (no nvcc at build time)";

    private static CudaDevice instance;
    private static Availability availability;

    final int ordinal;
    final String name;
    final int major;
    final int minor;
    final int maxSharedOptIn;
    final int maxSharedPerSm;
    private final CUcontext context;
    private final CUmodule module;
    private final Map<String, CUfunction> functions = new HashMap<>();

    private CudaDevice(int ordinal, String name, int major, int minor, int maxSharedOptIn, int maxSharedPerSm,
                       CUcontext context, CUmodule module) {
        this.ordinal = ordinal;
        this.name = name;
        this.major = major;
        this.minor = minor;
        this.maxSharedOptIn = maxSharedOptIn;
        this.maxSharedPerSm = maxSharedPerSm;
        this.context = context;
        this.module = module;
    }

    /** @return the kernels compiled into this jar, or null */
    static byte[] kernelImage() {
        try (InputStream in = CudaDevice.class.getResourceAsStream(KERNELS_RESOURCE)) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            return null;
        }
    }

    /** @return whether the device can be used, probing once; never throws */
    static synchronized Availability availability() {
        if (availability == null) {
            try {
                instance = open();
                availability = Availability.available(instance.describe());
            } catch (CudaUnavailable e) {
                availability = Availability.unavailable(e.getMessage());
            } catch (CudaException e) {
                availability = Availability.unavailable(e.getMessage());
            } catch (LinkageError e) {
                availability = Availability.unavailable(nativeReason(e));
            } catch (RuntimeException e) {
                availability = Availability.unavailable("CUDA probe failed: " + e);
            }
        }
        return availability;
    }

    /** @return the opened device; call only when {@link #availability()} is available */
    static synchronized CudaDevice get() {
        if (!availability().isAvailable()) {
            throw new IllegalStateException("cuda backend is " + availability);
        }
        return instance;
    }

    /** A reason from a failure to load JCuda's native driver binding. */
    static String nativeReason(Throwable e) {
        String m = String.valueOf(e.getMessage());
        for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
            m += " / " + t.getMessage();
        }
        if (m.contains("libcuda")) {
            return "no libcuda.so.1 (the NVIDIA driver is not installed): " + firstLine(m);
        }
        return "JCuda's native driver binding could not be loaded: " + firstLine(m);
    }

    private static String firstLine(String s) {
        int nl = s.indexOf('\n');
        String line = nl < 0 ? s : s.substring(0, nl);
        return line.length() > 300 ? line.substring(0, 300) + "..." : line;
    }

    private static final class CudaUnavailable extends Exception {
        private static final long serialVersionUID = 1L;

        CudaUnavailable(String reason) {
            super(reason, null, false, false);
        }
    }

    private static CudaDevice open() throws CudaUnavailable {
        byte[] image = kernelImage();
        if (image == null) {
            throw new CudaUnavailable(NO_KERNELS);
        }
        JCudaDriver.setExceptionsEnabled(false);
        int init = JCudaDriver.cuInit(0);
        if (init != 0) {
            throw new CudaUnavailable("cuInit failed: " + CudaException.errorName(init)
                    + (init == 100 ? " (no CUDA device)" : ""));
        }
        int[] count = new int[1];
        CudaException.check(JCudaDriver.cuDeviceGetCount(count), "cuDeviceGetCount");
        if (count[0] == 0) {
            throw new CudaUnavailable("no CUDA device");
        }
        int ordinal;
        try {
            ordinal = PlanOptions.fromSystemProperties(List.of(CudaBackend.DEVICE)).get(CudaBackend.DEVICE);
        } catch (IllegalArgumentException e) {
            throw new CudaUnavailable(e.getMessage());
        }
        if (ordinal < 0 || ordinal >= count[0]) {
            throw new CudaUnavailable("-D" + DEVICE_PROPERTY + "=" + ordinal + " but there are " + count[0] + " devices");
        }
        CUdevice device = new CUdevice();
        CudaException.check(JCudaDriver.cuDeviceGet(device, ordinal), "cuDeviceGet");
        byte[] nameBytes = new byte[256];
        CudaException.check(JCudaDriver.cuDeviceGetName(nameBytes, nameBytes.length, device), "cuDeviceGetName");
        String name = new String(nameBytes, StandardCharsets.US_ASCII).trim().replace("\0", "");
        int major = attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        int minor = attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        if (major < 8) {
            throw new CudaUnavailable("device " + ordinal + " (" + name + ") has compute capability " + major + "." + minor
                    + ", below 8.0; the kernels need Ampere or newer");
        }
        int maxShared = attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
        int sharedPerSm = attribute(device, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR);
        CUcontext context = new CUcontext();
        CudaException.check(JCudaDriver.cuDevicePrimaryCtxRetain(context, device), "cuDevicePrimaryCtxRetain");
        CudaException.check(JCudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
        CUmodule module = new CUmodule();
        CudaException.check(JCudaDriver.cuModuleLoadData(module, image), "cuModuleLoadData (loading the kernels)");
        return new CudaDevice(ordinal, name, major, minor, maxShared, sharedPerSm, context, module);
    }

    private static int attribute(CUdevice device, int attribute) {
        int[] value = new int[1];
        CudaException.check(JCudaDriver.cuDeviceGetAttribute(value, attribute, device), "cuDeviceGetAttribute");
        return value[0];
    }

    /** @return the shared memory a launch on this device may use */
    LaunchGeometry.DeviceLimits limits() {
        return new LaunchGeometry.DeviceLimits(maxSharedOptIn, maxSharedPerSm);
    }

    /** Makes this device's context current on the calling thread. */
    void makeCurrent() {
        CudaException.check(JCudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
    }

    /** @return the kernel {@code symbol}, its dynamic shared memory limit raised to the device's opt-in maximum */
    synchronized CUfunction function(String symbol) {
        CUfunction f = functions.get(symbol);
        if (f == null) {
            f = new CUfunction();
            CudaException.check(JCudaDriver.cuModuleGetFunction(f, module, symbol), "cuModuleGetFunction(" + symbol + ")");
            CudaException.check(JCudaDriver.cuFuncSetAttribute(f,
                    jcuda.driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, maxSharedOptIn),
                    "cuFuncSetAttribute(" + symbol + ", max dynamic shared memory " + maxSharedOptIn + ")");
            functions.put(symbol, f);
        }
        return f;
    }

    /** @return e.g. {@code cuda:0 NVIDIA H100 80GB HBM3 (sm_90)} */
    String describe() {
        return "cuda:" + ordinal + " " + name + " (sm_" + major + minor + ")";
    }
}
