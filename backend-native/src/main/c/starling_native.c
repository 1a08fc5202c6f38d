/*
 * The JNI side of the native backend (dev.starling.backend.nativecpu.NativeKernels): what the CPU
 * can run (CPUID, XGETBV, and the Linux permission for the AMX tile state), the scratch a call
 * needs, and one forward call: K and V packed by every worker, then the work items claimed by
 * every worker, on the calling thread and threads − 1 helpers started for the call.
 *
 * Compiled for the x86-64 baseline: nothing here runs an instruction the CPU may lack; the path
 * files are compiled with their own flags and only called when probe() said so (NativePlan).
 * Every check of the problem, the tensors and the sizes happened in Java before forward().
 */
#include <cpuid.h>
#include <errno.h>
#include <jni.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "starling_job.h"

/* Bits of probe(), mirrored by NativeKernels. */
#define HAS_AVX2 1
#define HAS_AVX512F 2
#define HAS_AVX512BF16 4
#define HAS_AMX 8
#define AMX_REFUSED 16

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

/* The kernel paths by their number in NativeKernels (KernelPath.code()). */
static const starling_path *path_of(int code) {
    switch (code) {
        case 0: return &starling_path_portable_fp32;
        case 1: return &starling_path_avx2_fp32;
        case 2: return &starling_path_avx512_fp32;
        case 3: return &starling_path_tiles_bf16;
        case 4: return &starling_path_avx512bf16;
        case 5: return &starling_path_amx;
        default: return NULL;
    }
}

static uint64_t xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t) hi << 32) | lo;
}

static int probe_once(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) {
        return 0;
    }
    int osxsave = (c >> 27) & 1;
    int fma = (c >> 12) & 1;
    if (!osxsave) {
        return 0;
    }
    uint64_t xcr = xcr0();
    int ymm = (xcr & 0x6) == 0x6;
    int zmm = ymm && (xcr & 0xe0) == 0xe0;
    int tiles = (xcr & (3u << 17)) == (3u << 17);
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        return 0;
    }
    int flags = 0;
    if (ymm && fma && ((b >> 5) & 1)) {
        flags |= HAS_AVX2;
    }
    if (zmm && ((b >> 16) & 1)) {
        flags |= HAS_AVX512F;
    }
    int amx = ((d >> 22) & 1) && ((d >> 24) & 1) && tiles && (flags & HAS_AVX512F);
    unsigned a1, b1, c1, d1;
    if ((flags & HAS_AVX512F) && __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && ((a1 >> 5) & 1)) {
        flags |= HAS_AVX512BF16;
    }
    if (amx && (flags & HAS_AVX512BF16)) {
        /* Linux keeps the 8 KB tile state off until the process asks for it. */
        if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0) {
            flags |= HAS_AMX;
        } else {
            flags |= AMX_REFUSED | ((errno & 0xffff) << 8);
        }
    }
    return flags;
}

static pthread_once_t probed = PTHREAD_ONCE_INIT;
static int probe_flags;

static void probe_init(void) {
    probe_flags = probe_once();
}

JNIEXPORT jint JNICALL Java_dev_starling_backend_nativecpu_NativeKernels_probe(JNIEnv *env, jclass cls) {
    (void) env;
    (void) cls;
    pthread_once(&probed, probe_init);
    return probe_flags;
}

/* Geometry ints, in the order NativeKernels.geometry() writes them. */
enum { G_BATCH, G_QHEADS, G_KVHEADS, G_NQ, G_NK, G_D, G_DV, G_QBLOCK, G_KBLOCK, G_QROWS, G_SLOTS, G_NITEMS, G_THREADS,
       G_COUNT };

static void sizes(const starling_path *path, const jint *g, starling_job *job) {
    job->batch = g[G_BATCH];
    job->qheads = g[G_QHEADS];
    job->kvheads = g[G_KVHEADS];
    job->group = g[G_QHEADS] / g[G_KVHEADS];
    job->nq = g[G_NQ];
    job->nk = g[G_NK];
    job->d = g[G_D];
    job->dv = g[G_DV];
    job->qblock = g[G_QBLOCK];
    job->kblock = g[G_KBLOCK];
    job->qrows = g[G_QROWS];
    job->slots_per_layout = g[G_SLOTS];
    job->nitems = g[G_NITEMS];
    job->dp = (job->d + path->reduce - 1) / path->reduce * path->reduce;
    job->dvp = (job->dv + 63) / 64 * 64;
    job->nkp = (job->nk + 31) / 32 * 32 + 32;
    /* bf16 keys are packed twice: high parts, then remainders (attention_kernel.h, SPLIT). */
    job->khead_bytes = (int64_t) job->nkp * job->dp * path->elem_bytes * (path->elem_bytes == 2 ? 2 : 1);
    job->vhead_bytes = (int64_t) job->nkp * job->dvp * path->elem_bytes;
}

JNIEXPORT jlong JNICALL Java_dev_starling_backend_nativecpu_NativeKernels_scratchBytes(JNIEnv *env, jclass cls,
                                                                                      jint code, jintArray geometry) {
    (void) cls;
    const starling_path *path = path_of(code);
    if (path == NULL || (*env)->GetArrayLength(env, geometry) != G_COUNT) {
        return -1;
    }
    jint g[G_COUNT];
    (*env)->GetIntArrayRegion(env, geometry, 0, G_COUNT, g);
    starling_job job;
    sizes(path, g, &job);
    return (jlong) job.batch * job.kvheads * (job.khead_bytes + job.vhead_bytes) + 64;
}

typedef struct {
    starling_job *job;
    int (*run)(starling_job *job);
} round_arg;

static void *round_main(void *p) {
    round_arg *r = (round_arg *) p;
    int rc = r->run(r->job);
    if (rc != STARLING_OK) {
        atomic_store(&r->job->failed, rc);
    }
    return NULL;
}

/* Runs `run` on the calling thread and up to threads − 1 helpers; a helper that cannot start is left out. */
static void run_round(starling_job *job, int threads, int (*run)(starling_job *job)) {
    pthread_t helpers[256];
    int started = 0;
    round_arg arg = {job, run};
    if (threads > 257) {
        threads = 257;
    }
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&helpers[started], NULL, round_main, &arg) == 0) {
            started++;
        }
    }
    round_main(&arg);
    for (int t = 0; t < started; t++) {
        pthread_join(helpers[t], NULL);
    }
}

typedef struct {
    jarray array;
    void *data;
    jint mode;
} pinned;

static void *pin(JNIEnv *env, pinned *slot, jarray array, int output) {
    slot->array = array;
    slot->mode = output ? 0 : JNI_ABORT;
    slot->data = array == NULL ? NULL : (*env)->GetPrimitiveArrayCritical(env, array, NULL);
    return slot->data;
}

JNIEXPORT jint JNICALL Java_dev_starling_backend_nativecpu_NativeKernels_forward(
        JNIEnv *env, jclass cls, jint code, jintArray geometry, jlongArray strides, jfloat scale2,
        jfloatArray q, jfloatArray k, jfloatArray v, jfloatArray out, jfloatArray lse,
        jintArray items, jintArray units, jintArray keyBlocks, jintArray rowKeyEnd,
        jfloatArray partOut, jfloatArray partLse, jobject scratch) {
    (void) cls;
    const starling_path *path = path_of(code);
    if (path == NULL || (*env)->GetArrayLength(env, geometry) != G_COUNT || (*env)->GetArrayLength(env, strides) != 12) {
        return STARLING_BAD_PATH;
    }
    jint g[G_COUNT];
    jlong st[12];
    (*env)->GetIntArrayRegion(env, geometry, 0, G_COUNT, g);
    (*env)->GetLongArrayRegion(env, strides, 0, 12, st);
    starling_job job;
    memset(&job, 0, sizeof job);
    sizes(path, g, &job);
    for (int x = 0; x < 3; x++) {
        job.qs[x] = st[x];
        job.ks[x] = st[3 + x];
        job.vs[x] = st[6 + x];
        job.os[x] = st[9 + x];
    }
    job.scale2 = scale2;
    uint8_t *base = (uint8_t *) (*env)->GetDirectBufferAddress(env, scratch);
    jlong capacity = (*env)->GetDirectBufferCapacity(env, scratch);
    int64_t heads = (int64_t) job.batch * job.kvheads;
    if (base == NULL || capacity < heads * (job.khead_bytes + job.vhead_bytes) + 64) {
        return STARLING_NO_MEMORY;
    }
    uint8_t *aligned = base + ((64 - ((uintptr_t) base & 63)) & 63);
    job.kpack = aligned;
    job.vpack = aligned + heads * job.khead_bytes;
    job.pack_items = (int) (heads * ((job.nkp + STARLING_PACK_KEYS - 1) / STARLING_PACK_KEYS));
    atomic_init(&job.next_pack, 0);
    atomic_init(&job.next_unit, 0);
    atomic_init(&job.nonfinite, 0);
    atomic_init(&job.failed, 0);

    pinned slots[11];
    memset(slots, 0, sizeof slots);
    int ok = 1;
    job.q = pin(env, &slots[0], q, 0);
    job.k = pin(env, &slots[1], k, 0);
    job.v = pin(env, &slots[2], v, 0);
    job.out = pin(env, &slots[3], out, 1);
    job.lse = pin(env, &slots[4], lse, 1);
    job.items = pin(env, &slots[5], items, 0);
    job.units = pin(env, &slots[6], units, 0);
    job.key_blocks = pin(env, &slots[7], keyBlocks, 0);
    job.row_key_end = pin(env, &slots[8], rowKeyEnd, 0);
    job.part_out = pin(env, &slots[9], partOut, 1);
    job.part_lse = pin(env, &slots[10], partLse, 1);
    for (int x = 0; x < 11; x++) {
        if (slots[x].array != NULL && slots[x].data == NULL) {
            ok = 0;
        }
    }
    int status = STARLING_NO_MEMORY;
    if (ok) {
        run_round(&job, g[G_THREADS], path->pack);
        if (!atomic_load(&job.nonfinite) && !atomic_load(&job.failed)) {
            run_round(&job, g[G_THREADS], path->units);
        }
        int failed = atomic_load(&job.failed);
        status = failed != 0 ? failed : atomic_load(&job.nonfinite) ? STARLING_NONFINITE : STARLING_OK;
    }
    for (int x = 10; x >= 0; x--) {
        if (slots[x].data != NULL) {
            (*env)->ReleasePrimitiveArrayCritical(env, slots[x].array, slots[x].data, slots[x].mode);
        }
    }
    return status;
}
