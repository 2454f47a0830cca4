/*
 * Origin: a copy of the team's test aid shared/fakecuda/fake.c, adapted for
 * the gpu package's tests (gpu/fakecuda_test.go builds it with cc at test
 * time and loads it through purego, like the real libcuda.so.1). Changes
 * from the original: every driver function the loader binds can have a
 * failure injected (FAKECUDA_FAIL or fakecuda_fail), and the fakecuda_*
 * control functions at the end let one process inject failures, read the
 * counters and start over without restarting. The driver's rules that it
 * enforces are listed below; a VIOLATION line means a real driver would have
 * failed the call, or memory was released while a copy still read it.
 */
/*
 * fake.c: a fake CUDA driver (libcuda.so.1) in host memory, for exercising a
 * binding such as safeweights' purego one end to end without a GPU.
 *
 * Build:  gcc -O2 -shared -fPIC -o libcuda.so.1 fake.c -lpthread
 * Use:    LD_LIBRARY_PATH=DIR program ...
 *
 * It implements the driver calls the safeweights loader binds, with the
 * driver API's contracts checked as strictly as the documentation states
 * them, and the calling convention made visible:
 *
 *   - every call is checked for its arguments (non-null out-pointers, flag
 *     values, sizes, handles it issued, device ranges inside one allocation);
 *   - the current context is per OS thread, as in the real driver: a call
 *     that needs one on a thread without one fails CUDA_ERROR_INVALID_CONTEXT
 *     (201), and is logged as a VIOLATION naming the thread;
 *   - cuMemcpyHtoDAsync from page-locked memory (cuMemHostAlloc or
 *     registered) is deferred: it runs only when an event recorded after it
 *     is synchronised or its stream is, so memory released too early is
 *     caught: unregistering, freeing or unmapping memory that a pending copy
 *     still reads is a VIOLATION, and so is a pending copy whose source is no
 *     longer mapped when it runs (checked with mincore, not by faulting);
 *   - a copy from pageable memory runs at once (the driver stages it) and is
 *     counted as "pageable": slow on a real GPU;
 *   - cuMemHostRegister refuses ranges overlapping a registered page (712),
 *     unmapped ranges, and read-only mappings without the READ_ONLY flag;
 *     FAKECUDA_STRICT_ALIGN=1 also refuses unaligned address or size;
 *   - cuMemcpyDtoH on the legacy stream does not wait for non-blocking
 *     streams: reading back bytes with a copy still pending is a VIOLATION;
 *   - leaks (allocations, registrations, streams, events, retained
 *     contexts) are reported at exit.
 *
 * Environment:
 *   FAKECUDA_LOG=path       log file (default stderr)
 *   FAKECUDA_VERBOSE=1      log every call with its arguments and thread
 *   FAKECUDA_STRICT_ALIGN=1 cuMemHostRegister needs page-aligned p and size
 *   FAKECUDA_NO_READONLY=1  CU_MEMHOSTREGISTER_READ_ONLY is unsupported (801)
 *   FAKECUDA_LAX_UNREGISTER=1 cuMemHostUnregister works on a thread with no
 *                           current context (a warning, not a violation):
 *                           what UCX reports the real driver doing
 *                           (openucx/ucx#10643), against the documented
 *                           CUDA_ERROR_INVALID_CONTEXT
 *   FAKECUDA_FAIL=name:n    the n-th call of function name fails (out of
 *                           memory for allocations, else invalid value)
 *   FAKECUDA_DUMP=dir       each device allocation is written to
 *                           dir/alloc-<k>.bin when freed (k counts from 0)
 *   FAKECUDA_MEM=bytes      device memory size (default 141 GB)
 *   FAKECUDA_VIOLATION_RC=n exit status forced at exit() when violations
 *                           were seen (C programs only: Go programs leave
 *                           with exit_group and run no destructor)
 *
 * Whenever the primary context's last reference is released (and at exit()
 * for C programs) a line "fakecuda: summary ..." gives cumulative counts:
 * violations, bytes copied, leaks; "fakecuda: calls" the calls per function.
 * Each freed allocation's bytes are logged as an FNV-1a 64 checksum.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct fctx *CUcontext;
typedef struct fstream *CUstream;
typedef struct fevent *CUevent;

enum {
	CUDA_SUCCESS = 0,
	CUDA_ERROR_INVALID_VALUE = 1,
	CUDA_ERROR_OUT_OF_MEMORY = 2,
	CUDA_ERROR_NOT_INITIALIZED = 3,
	CUDA_ERROR_INVALID_DEVICE = 101,
	CUDA_ERROR_INVALID_CONTEXT = 201,
	CUDA_ERROR_INVALID_HANDLE = 400,
	CUDA_ERROR_CONTEXT_IS_DESTROYED = 709,
	CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED = 712,
	CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED = 713,
	CUDA_ERROR_NOT_PERMITTED = 800,
	CUDA_ERROR_NOT_SUPPORTED = 801,
	CUDA_ERROR_UNKNOWN = 999,
};

#define CU_MEMHOSTREGISTER_PORTABLE 0x01
#define CU_MEMHOSTREGISTER_DEVICEMAP 0x02
#define CU_MEMHOSTREGISTER_IOMEMORY 0x04
#define CU_MEMHOSTREGISTER_READ_ONLY 0x08
#define CU_MEMHOSTALLOC_ALL 0x07
#define CU_STREAM_NON_BLOCKING 0x01
#define CU_EVENT_ALL 0x07
#define CU_EVENT_DISABLE_TIMING 0x02
#define CU_EVENT_INTERPROCESS 0x04

/* ---- state ---------------------------------------------------------------- */

struct fctx {
	uint32_t magic;
	int refs;   /* primary context retain count */
	int alive;  /* active (refs > 0) */
	int gen;    /* incremented each time it is (re)created */
};

struct op {
	char *dst;
	const char *src;
	size_t n;
	int reg; /* index+1 of the registration or host allocation src lies in */
	unsigned long long seq;
	struct op *next;
};

struct fstream {
	uint32_t magic;
	unsigned flags;
	int id;
	struct op *head, *tail;
	unsigned long long issued, done; /* ops queued, ops run */
	struct fstream *next;
};

struct fevent {
	uint32_t magic;
	unsigned flags;
	int id;
	struct fstream *s; /* stream recorded on, or NULL (legacy) */
	unsigned long long pos; /* s->issued at record */
	int recorded;
	struct fevent *next;
};

struct alloc {
	char *p;
	size_t n, mapped;
	int id;
	struct alloc *next;
};

struct hostrange { /* a registration or a cuMemHostAlloc block */
	char *p;
	size_t n;
	unsigned flags;
	int pinned_alloc; /* 1: cuMemHostAlloc, 0: cuMemHostRegister */
	int live;
	int id;
};

#define MAXRANGES 65536
static struct hostrange ranges[MAXRANGES];
static int nranges;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static __thread struct fctx *cur;
static struct fctx primary = {0x43545846, 0, 0, 0};
static int initialized;
static struct alloc *allocs;
static int nallocs_total;
static struct fstream *streams;
static int nstreams_total;
static struct fevent *events;
static int nevents_total;
static unsigned long long seqno;

static FILE *logf;
static int verbose, strict_align, no_readonly, lax_unregister;
static char fail_name[128];
static long fail_at;
static char *dump_dir;
static unsigned long long devmem = 141ULL * 1000 * 1000 * 1000, devused;
static long pagesz;

static unsigned long long violations, pageable_copies, deferred_copies, copied_bytes, dtoh_bytes;

#define NFUNCS 40
static const char *fnames[NFUNCS];
static unsigned long long fcalls[NFUNCS];

static long tid(void) { return syscall(SYS_gettid); }

static void logv(const char *kind, const char *fmt, va_list ap)
{
	fprintf(logf, "fakecuda: %s [tid %ld] ", kind, tid());
	vfprintf(logf, fmt, ap);
	fputc('\n', logf);
	fflush(logf);
}

static void logmsg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	logv("call", fmt, ap);
	va_end(ap);
}

static void violation(const char *fmt, ...)
{
	va_list ap;
	violations++;
	va_start(ap, fmt);
	logv("VIOLATION", fmt, ap);
	va_end(ap);
}

static void warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	logv("warning", fmt, ap);
	va_end(ap);
}

static void summary(void);
static void summary_locked(const char *why);

__attribute__((constructor)) static void setup(void)
{
	const char *s;
	logf = stderr;
	if ((s = getenv("FAKECUDA_LOG")) && *s) {
		FILE *f = fopen(s, "a");
		if (f)
			logf = f;
	}
	verbose = (s = getenv("FAKECUDA_VERBOSE")) && *s == '1';
	strict_align = (s = getenv("FAKECUDA_STRICT_ALIGN")) && *s == '1';
	no_readonly = (s = getenv("FAKECUDA_NO_READONLY")) && *s == '1';
	lax_unregister = (s = getenv("FAKECUDA_LAX_UNREGISTER")) && *s == '1';
	if ((s = getenv("FAKECUDA_FAIL")) && *s) {
		const char *c = strchr(s, ':');
		if (c && (size_t)(c - s) < sizeof fail_name) {
			memcpy(fail_name, s, c - s);
			fail_at = atol(c + 1);
		}
	}
	if ((s = getenv("FAKECUDA_DUMP")) && *s)
		dump_dir = strdup(s);
	if ((s = getenv("FAKECUDA_MEM")) && *s)
		devmem = strtoull(s, NULL, 0);
	pagesz = sysconf(_SC_PAGESIZE);
	logmsg("loaded (pid %d, page %ld, strict_align %d, no_readonly %d)", (int)getpid(), pagesz, strict_align,
	       no_readonly);
}

__attribute__((destructor)) static void teardown(void) { summary(); }

/* count records a call of name; it returns 1 when the call is to fail. */
static int count(const char *name)
{
	int i;
	for (i = 0; i < NFUNCS && fnames[i]; i++)
		if (strcmp(fnames[i], name) == 0)
			break;
	if (i == NFUNCS)
		return 0;
	fnames[i] = name;
	fcalls[i]++;
	return fail_name[0] && strcmp(fail_name, name) == 0 && (long)fcalls[i] == fail_at;
}

#define ENTER(name)                                                                                \
	pthread_mutex_lock(&mu);                                                                   \
	int inject_ = count(name); (void)inject_;                                                  \
	const char *fn_ = name;                                                                    \
	(void)fn_;                                                                                 \
	if (!initialized && strcmp(name, "cuInit") && strcmp(name, "cuDriverGetVersion") &&        \
	    strcmp(name, "cuGetErrorName") && strcmp(name, "cuGetErrorString")) {                  \
		violation("%s before cuInit", name);                                               \
		pthread_mutex_unlock(&mu);                                                         \
		return CUDA_ERROR_NOT_INITIALIZED;                                                 \
	}

#define RETURN(rc)                                                                                 \
	do {                                                                                       \
		CUresult r_ = (rc);                                                                \
		pthread_mutex_unlock(&mu);                                                         \
		return r_;                                                                         \
	} while (0)

#define INJECT(rc)                                                                                 \
	do {                                                                                       \
		if (inject_) {                                                                     \
			logmsg("%s: injected failure %d", fn_, (rc));                              \
			RETURN(rc);                                                                \
		}                                                                                  \
	} while (0)

/* NEEDCTX fails the call when the calling thread has no current context. */
#define NEEDCTX()                                                                                  \
	do {                                                                                       \
		if (cur == NULL) {                                                                 \
			violation("%s on a thread with no current context: CUDA_ERROR_INVALID_CONTEXT", fn_); \
			RETURN(CUDA_ERROR_INVALID_CONTEXT);                                        \
		}                                                                                  \
		if (!cur->alive) {                                                                 \
			violation("%s with a destroyed context current", fn_);                     \
			RETURN(CUDA_ERROR_CONTEXT_IS_DESTROYED);                                   \
		}                                                                                  \
	} while (0)

static int mapped(const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(pagesz - 1);
	uintptr_t e = ((uintptr_t)p + n + pagesz - 1) & ~(uintptr_t)(pagesz - 1);
	size_t pages = (e - a) / pagesz;
	unsigned char small[4096];
	unsigned char *vec = pages <= sizeof small ? small : malloc(pages);
	int ok = mincore((void *)a, e - a, vec) == 0;
	if (vec != small)
		free(vec);
	return ok;
}

/* vma_writable reports whether [p, p+n) lies in writable mappings. */
static int vma_writable(const void *p, size_t n)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	uintptr_t lo = (uintptr_t)p, hi = lo + n, at = lo;
	int ok = 1;
	if (!f)
		return 1;
	while (fgets(line, sizeof line, f) && at < hi) {
		uintptr_t a, b;
		char perm[8];
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &a, &b, perm) != 3)
			continue;
		if (b <= at || a >= hi)
			continue;
		if (perm[1] != 'w')
			ok = 0;
		at = b;
	}
	fclose(f);
	return ok;
}

static struct alloc *find_alloc(CUdeviceptr d, size_t n)
{
	struct alloc *a;
	for (a = allocs; a; a = a->next)
		if (d >= (CUdeviceptr)(uintptr_t)a->p && d + n <= (CUdeviceptr)(uintptr_t)a->p + a->n &&
		    d + n >= d)
			return a;
	return NULL;
}

/* range_of returns the live host range containing [p, p+n), or -1. */
static int range_of(const char *p, size_t n)
{
	int i;
	for (i = 0; i < nranges; i++)
		if (ranges[i].live && p >= ranges[i].p && p + n <= ranges[i].p + ranges[i].n)
			return i;
	return -1;
}

/* range_overlapping returns a live range touching [p, p+n), or -1. */
static int range_overlapping(const char *p, size_t n)
{
	int i;
	for (i = 0; i < nranges; i++)
		if (ranges[i].live && p < ranges[i].p + ranges[i].n && ranges[i].p < p + n)
			return i;
	return -1;
}

static struct fstream *find_stream(CUstream s)
{
	struct fstream *x;
	for (x = streams; x; x = x->next)
		if (x == s)
			return x;
	return NULL;
}

static struct fevent *find_event(CUevent e)
{
	struct fevent *x;
	for (x = events; x; x = x->next)
		if (x == e)
			return x;
	return NULL;
}

static const char *fmtsize(size_t n)
{
	static char b[4][32];
	static int k;
	char *s = b[k++ & 3];
	snprintf(s, 32, "%zu", n);
	return s;
}

/* run_until runs the ops of s queued before position pos. */
static void run_until(struct fstream *s, unsigned long long pos)
{
	while (s->head && s->done < pos) {
		struct op *o = s->head;
		int ri = o->reg - 1;
		if (ri >= 0 && !ranges[ri].live)
			violation("stream %d: copy #%llu of %s bytes from %p runs after its source %s %d was %s",
				  s->id, o->seq, fmtsize(o->n), (void *)o->src,
				  ranges[ri].pinned_alloc ? "pinned allocation" : "registration", ranges[ri].id,
				  ranges[ri].pinned_alloc ? "freed" : "unregistered");
		if (!mapped(o->src, o->n))
			violation("stream %d: copy #%llu: source %p (%s bytes) is no longer mapped; copy skipped",
				  s->id, o->seq, (void *)o->src, fmtsize(o->n));
		else if (!find_alloc((CUdeviceptr)(uintptr_t)o->dst, o->n))
			violation("stream %d: copy #%llu: destination %p no longer allocated; copy skipped", s->id,
				  o->seq, (void *)o->dst);
		else
			memcpy(o->dst, o->src, o->n);
		s->head = o->next;
		if (!s->head)
			s->tail = NULL;
		s->done++;
		free(o);
	}
}

/* pending_from reports a pending op reading [p, p+n). */
static struct op *pending_from(const char *p, size_t n, struct fstream **sp)
{
	struct fstream *s;
	for (s = streams; s; s = s->next) {
		struct op *o;
		for (o = s->head; o; o = o->next)
			if (o->src < p + n && p < o->src + o->n) {
				*sp = s;
				return o;
			}
	}
	return NULL;
}

static struct op *pending_to(const char *p, size_t n, struct fstream **sp)
{
	struct fstream *s;
	for (s = streams; s; s = s->next) {
		struct op *o;
		for (o = s->head; o; o = o->next)
			if (o->dst < p + n && p < o->dst + o->n) {
				*sp = s;
				return o;
			}
	}
	return NULL;
}

static uint64_t fnv(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;
	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* ---- error names ------------------------------------------------------------ */

static const struct {
	int code;
	const char *name, *text;
} errs[] = {
	{0, "CUDA_SUCCESS", "no error"},
	{1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
	{2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
	{3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
	{101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
	{201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
	{400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
	{709, "CUDA_ERROR_CONTEXT_IS_DESTROYED", "context is destroyed"},
	{712, "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED", "part or all of the requested memory range is already mapped"},
	{713, "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED", "pointer does not correspond to a registered memory region"},
	{800, "CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
	{801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
	{999, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

CUresult cuGetErrorName(CUresult e, const char **p)
{
	size_t i;
	if (!p)
		return CUDA_ERROR_INVALID_VALUE;
	for (i = 0; i < sizeof errs / sizeof errs[0]; i++)
		if (errs[i].code == e) {
			*p = errs[i].name;
			return CUDA_SUCCESS;
		}
	*p = NULL;
	return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorString(CUresult e, const char **p)
{
	size_t i;
	if (!p)
		return CUDA_ERROR_INVALID_VALUE;
	for (i = 0; i < sizeof errs / sizeof errs[0]; i++)
		if (errs[i].code == e) {
			*p = errs[i].text;
			return CUDA_SUCCESS;
		}
	*p = NULL;
	return CUDA_ERROR_INVALID_VALUE;
}

/* ---- init, devices, contexts ------------------------------------------------- */

CUresult cuInit(unsigned int flags)
{
	ENTER("cuInit");
	if (verbose)
		logmsg("cuInit(flags=%u)", flags);
	if (flags != 0) {
		violation("cuInit: flags %u, must be 0", flags);
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	INJECT(CUDA_ERROR_UNKNOWN);
	initialized = 1;
	RETURN(CUDA_SUCCESS);
}

CUresult cuDriverGetVersion(int *v)
{
	ENTER("cuDriverGetVersion");
	if (!v)
		RETURN(CUDA_ERROR_INVALID_VALUE);
	*v = 12080;
	RETURN(CUDA_SUCCESS);
}

CUresult cuDeviceGetCount(int *n)
{
	ENTER("cuDeviceGetCount");
	if (!n) {
		violation("cuDeviceGetCount: NULL count");
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	*n = 1;
	RETURN(CUDA_SUCCESS);
}

CUresult cuDeviceGet(CUdevice *d, int ordinal)
{
	ENTER("cuDeviceGet");
	if (verbose)
		logmsg("cuDeviceGet(%p, ordinal=%d)", (void *)d, ordinal);
	if (!d) {
		violation("cuDeviceGet: NULL device pointer");
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	if (ordinal != 0)
		RETURN(CUDA_ERROR_INVALID_DEVICE);
	INJECT(CUDA_ERROR_UNKNOWN);
	*d = 0;
	RETURN(CUDA_SUCCESS);
}

CUresult cuDeviceGetName(char *name, int len, CUdevice d)
{
	ENTER("cuDeviceGetName");
	if (verbose)
		logmsg("cuDeviceGetName(%p, len=%d, dev=%d)", (void *)name, len, d);
	if (!name || len <= 0) {
		violation("cuDeviceGetName: name %p len %d", (void *)name, len);
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	if (d != 0)
		RETURN(CUDA_ERROR_INVALID_DEVICE);
	INJECT(CUDA_ERROR_UNKNOWN);
	snprintf(name, len, "Fake CUDA Device (fakecuda)");
	RETURN(CUDA_SUCCESS);
}

CUresult cuDeviceTotalMem_v2(size_t *b, CUdevice d)
{
	ENTER("cuDeviceTotalMem_v2");
	if (!b)
		RETURN(CUDA_ERROR_INVALID_VALUE);
	if (d != 0)
		RETURN(CUDA_ERROR_INVALID_DEVICE);
	*b = devmem;
	RETURN(CUDA_SUCCESS);
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d)
{
	ENTER("cuDevicePrimaryCtxRetain");
	if (verbose)
		logmsg("cuDevicePrimaryCtxRetain(%p, dev=%d) refs %d", (void *)c, d, primary.refs);
	if (!c) {
		violation("cuDevicePrimaryCtxRetain: NULL context pointer");
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	if (d != 0)
		RETURN(CUDA_ERROR_INVALID_DEVICE);
	INJECT(CUDA_ERROR_OUT_OF_MEMORY);
	if (primary.refs++ == 0) {
		primary.alive = 1;
		primary.gen++;
	}
	*c = &primary;
	RETURN(CUDA_SUCCESS);
}

static void ctx_destroyed_check(void)
{
	struct alloc *a;
	struct fstream *s;
	struct fevent *e;
	int i;
	for (a = allocs; a; a = a->next)
		warn("primary context destroyed with allocation %d (%s bytes) not freed", a->id, fmtsize(a->n));
	for (s = streams; s; s = s->next)
		warn("primary context destroyed with stream %d not destroyed", s->id);
	for (e = events; e; e = e->next)
		warn("primary context destroyed with event %d not destroyed", e->id);
	for (i = 0; i < nranges; i++)
		if (ranges[i].live)
			warn("primary context destroyed with %s %d (%p, %s bytes) live",
			     ranges[i].pinned_alloc ? "pinned allocation" : "registration", ranges[i].id,
			     (void *)ranges[i].p, fmtsize(ranges[i].n));
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d)
{
	ENTER("cuDevicePrimaryCtxRelease_v2");
	if (verbose)
		logmsg("cuDevicePrimaryCtxRelease_v2(dev=%d) refs %d", d, primary.refs);
	if (d != 0)
		RETURN(CUDA_ERROR_INVALID_DEVICE);
	if (primary.refs <= 0) {
		violation("cuDevicePrimaryCtxRelease_v2: primary context not retained");
		RETURN(CUDA_ERROR_INVALID_CONTEXT);
	}
	INJECT(CUDA_ERROR_UNKNOWN);
	if (--primary.refs == 0) {
		ctx_destroyed_check();
		primary.alive = 0;
		/* Go programs leave with exit_group, not exit(): no destructor
		 * runs, so the summary is written whenever the last reference to
		 * the primary context goes (cumulative counts). */
		summary_locked("primary context released");
	}
	RETURN(CUDA_SUCCESS);
}

CUresult cuCtxSetCurrent(CUcontext c)
{
	ENTER("cuCtxSetCurrent");
	if (verbose)
		logmsg("cuCtxSetCurrent(%p)", (void *)c);
	if (c && c != &primary) {
		violation("cuCtxSetCurrent: unknown context %p", (void *)c);
		RETURN(CUDA_ERROR_INVALID_CONTEXT);
	}
	if (c && !c->alive) {
		violation("cuCtxSetCurrent: context %p is not active", (void *)c);
		RETURN(CUDA_ERROR_CONTEXT_IS_DESTROYED);
	}
	INJECT(CUDA_ERROR_UNKNOWN);
	cur = c;
	RETURN(CUDA_SUCCESS);
}

CUresult cuCtxGetCurrent(CUcontext *c)
{
	ENTER("cuCtxGetCurrent");
	if (!c) {
		violation("cuCtxGetCurrent: NULL pointer");
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	INJECT(CUDA_ERROR_UNKNOWN);
	*c = cur;
	RETURN(CUDA_SUCCESS);
}

/* ---- device memory ----------------------------------------------------------- */

CUresult cuMemAlloc_v2(CUdeviceptr *dp, size_t n)
{
	ENTER("cuMemAlloc_v2");
	if (verbose)
		logmsg("cuMemAlloc_v2(%p, %s)", (void *)dp, fmtsize(n));
	if (!dp) {
		violation("cuMemAlloc_v2: NULL pointer");
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	NEEDCTX();
	if (n == 0) {
		violation("cuMemAlloc_v2: size 0 (CUDA_ERROR_INVALID_VALUE)");
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	INJECT(CUDA_ERROR_OUT_OF_MEMORY);
	if (n > devmem - devused)
		RETURN(CUDA_ERROR_OUT_OF_MEMORY);
	size_t m = (n + pagesz - 1) / pagesz * pagesz;
	void *p = mmap(NULL, m, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		RETURN(CUDA_ERROR_OUT_OF_MEMORY);
	memset(p, 0xA5, n < (1 << 20) ? n : (1 << 20)); /* garbage head: unwritten bytes show */
	struct alloc *a = calloc(1, sizeof *a);
	a->p = p;
	a->n = n;
	a->mapped = m;
	a->id = nallocs_total++;
	a->next = allocs;
	allocs = a;
	devused += n;
	*dp = (CUdeviceptr)(uintptr_t)p;
	if (verbose)
		logmsg("  -> allocation %d at 0x%llx", a->id, *dp);
	RETURN(CUDA_SUCCESS);
}

CUresult cuMemFree_v2(CUdeviceptr d)
{
	ENTER("cuMemFree_v2");
	if (verbose)
		logmsg("cuMemFree_v2(0x%llx)", d);
	NEEDCTX();
	struct alloc **pp, *a;
	for (pp = &allocs; (a = *pp); pp = &a->next)
		if ((CUdeviceptr)(uintptr_t)a->p == d)
			break;
	if (!a) {
		violation("cuMemFree_v2: 0x%llx is not the start of an allocation", d);
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	INJECT(CUDA_ERROR_UNKNOWN);
	struct fstream *s;
	struct op *o = pending_to(a->p, a->n, &s);
	if (o)
		violation("cuMemFree_v2: allocation %d freed with copy #%llu into it pending on stream %d", a->id,
			  o->seq, s->id);
	uint64_t h = fnv((unsigned char *)a->p, a->n);
	logmsg("freed allocation %d: %s bytes, fnv1a64 %016" PRIx64, a->id, fmtsize(a->n), h);
	if (dump_dir) {
		char path[4096];
		snprintf(path, sizeof path, "%s/alloc-%d.bin", dump_dir, a->id);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			size_t off = 0;
			while (off < a->n) {
				ssize_t w = write(fd, a->p + off, a->n - off);
				if (w <= 0)
					break;
				off += w;
			}
			close(fd);
		}
	}
	*pp = a->next;
	munmap(a->p, a->mapped);
	devused -= a->n;
	free(a);
	RETURN(CUDA_SUCCESS);
}

/* ---- host memory -------------------------------------------------------------- */

static int slot_in_use(int k)
{
	struct fstream *s;
	struct op *o;
	if (ranges[k].live)
		return 1;
	for (s = streams; s; s = s->next)
		for (o = s->head; o; o = o->next)
			if (o->reg == k + 1)
				return 1;
	return 0;
}

static int add_range(char *p, size_t n, unsigned flags, int pinned)
{
	static int ids;
	int k = nranges;
	if (nranges == MAXRANGES) { /* reuse a dead slot no pending copy refers to */
		for (k = 0; k < MAXRANGES && slot_in_use(k); k++)
			;
		if (k == MAXRANGES) {
			warn("host range table full (%d live or pending)", MAXRANGES);
			return -1;
		}
	} else
		nranges++;
	ranges[k] = (struct hostrange){p, n, flags, pinned, 1, ids++};
	return k;
}

CUresult cuMemHostRegister_v2(void *p, size_t n, unsigned int flags)
{
	ENTER("cuMemHostRegister_v2");
	if (verbose)
		logmsg("cuMemHostRegister_v2(%p, %s, flags=0x%x)", p, fmtsize(n), flags);
	NEEDCTX();
	if (!p || n == 0) {
		violation("cuMemHostRegister_v2: p %p size %s", p, fmtsize(n));
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	if (flags & ~0x0Fu) {
		violation("cuMemHostRegister_v2: unknown flags 0x%x", flags);
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	if (flags & CU_MEMHOSTREGISTER_IOMEMORY) {
		violation("cuMemHostRegister_v2: IOMEMORY on ordinary memory");
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	if (((uintptr_t)p & (pagesz - 1)) || (n & (pagesz - 1))) {
		if (strict_align) {
			violation("cuMemHostRegister_v2: %p + %s not page-aligned (strict)", p, fmtsize(n));
			RETURN(CUDA_ERROR_INVALID_VALUE);
		}
		if (verbose || ((uintptr_t)p & (pagesz - 1)))
			warn("cuMemHostRegister_v2: %p + %s is not page-aligned (the driver pins whole pages)", p,
			     fmtsize(n));
	}
	if ((flags & CU_MEMHOSTREGISTER_READ_ONLY) && no_readonly)
		RETURN(CUDA_ERROR_NOT_SUPPORTED);
	INJECT(CUDA_ERROR_OUT_OF_MEMORY);
	/* the driver pins whole pages: two registrations may not share one */
	{
		char *lo = (char *)((uintptr_t)p & ~(uintptr_t)(pagesz - 1));
		char *hi = (char *)(((uintptr_t)p + n + pagesz - 1) & ~(uintptr_t)(pagesz - 1));
		int i;
		for (i = 0; i < nranges; i++) {
			if (!ranges[i].live)
				continue;
			char *rlo = (char *)((uintptr_t)ranges[i].p & ~(uintptr_t)(pagesz - 1));
			char *rhi = (char *)(((uintptr_t)ranges[i].p + ranges[i].n + pagesz - 1) & ~(uintptr_t)(pagesz - 1));
			if (lo < rhi && rlo < hi) {
				violation("cuMemHostRegister_v2: [%p, +%s) shares pages with %s %d [%p, +%s)", p,
					  fmtsize(n), ranges[i].pinned_alloc ? "pinned allocation" : "registration",
					  ranges[i].id, (void *)ranges[i].p, fmtsize(ranges[i].n));
				RETURN(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
			}
		}
	}
	if (!mapped(p, n)) {
		violation("cuMemHostRegister_v2: [%p, +%s) is not mapped", p, fmtsize(n));
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	if (!(flags & CU_MEMHOSTREGISTER_READ_ONLY) && !vma_writable(p, n)) {
		violation("cuMemHostRegister_v2: [%p, +%s) is a read-only mapping and READ_ONLY is not set", p,
			  fmtsize(n));
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	/* fault every page in, as pinning does */
	{
		volatile const char *c = p;
		size_t i;
		unsigned sum = 0;
		for (i = 0; i < n; i += pagesz)
			sum += c[i];
		sum += c[n - 1];
		(void)sum;
	}
	int k = add_range(p, n, flags, 0);
	if (k < 0)
		RETURN(CUDA_ERROR_OUT_OF_MEMORY);
	if (verbose)
		logmsg("  -> registration %d", ranges[k].id);
	RETURN(CUDA_SUCCESS);
}

CUresult cuMemHostUnregister(void *p)
{
	ENTER("cuMemHostUnregister");
	if (verbose)
		logmsg("cuMemHostUnregister(%p)", p);
	if (cur == NULL && lax_unregister)
		warn("cuMemHostUnregister on a thread with no current context (allowed: FAKECUDA_LAX_UNREGISTER)");
	else
		NEEDCTX();
	int i;
	for (i = 0; i < nranges; i++)
		if (ranges[i].live && !ranges[i].pinned_alloc && ranges[i].p == p)
			break;
	if (i == nranges) {
		violation("cuMemHostUnregister: %p is not the base of a registration", p);
		RETURN(CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
	}
	struct fstream *s;
	struct op *o = pending_from(ranges[i].p, ranges[i].n, &s);
	if (o)
		violation("cuMemHostUnregister: registration %d unregistered with copy #%llu from it pending on stream %d",
			  ranges[i].id, o->seq, s->id);
	INJECT(CUDA_ERROR_INVALID_VALUE);
	ranges[i].live = 0;
	RETURN(CUDA_SUCCESS);
}

CUresult cuMemHostAlloc(void **pp, size_t n, unsigned int flags)
{
	ENTER("cuMemHostAlloc");
	if (verbose)
		logmsg("cuMemHostAlloc(%p, %s, flags=0x%x)", (void *)pp, fmtsize(n), flags);
	if (!pp) {
		violation("cuMemHostAlloc: NULL pointer");
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	NEEDCTX();
	if (flags & ~CU_MEMHOSTALLOC_ALL) {
		violation("cuMemHostAlloc: unknown flags 0x%x", flags);
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	if (n == 0) {
		violation("cuMemHostAlloc: size 0");
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	INJECT(CUDA_ERROR_OUT_OF_MEMORY);
	size_t m = (n + pagesz - 1) / pagesz * pagesz;
	void *p = mmap(NULL, m, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		RETURN(CUDA_ERROR_OUT_OF_MEMORY);
	int k = add_range(p, m, flags, 1);
	if (k < 0) {
		munmap(p, m);
		RETURN(CUDA_ERROR_OUT_OF_MEMORY);
	}
	*pp = p;
	if (verbose)
		logmsg("  -> pinned allocation %d at %p", ranges[k].id, p);
	RETURN(CUDA_SUCCESS);
}

CUresult cuMemFreeHost(void *p)
{
	ENTER("cuMemFreeHost");
	if (verbose)
		logmsg("cuMemFreeHost(%p)", p);
	NEEDCTX();
	int i;
	for (i = 0; i < nranges; i++)
		if (ranges[i].live && ranges[i].pinned_alloc && ranges[i].p == p)
			break;
	if (i == nranges) {
		violation("cuMemFreeHost: %p is not a cuMemHostAlloc block", p);
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	INJECT(CUDA_ERROR_UNKNOWN);
	struct fstream *s;
	struct op *o = pending_from(ranges[i].p, ranges[i].n, &s);
	if (o)
		violation("cuMemFreeHost: pinned allocation %d freed with copy #%llu from it pending on stream %d",
			  ranges[i].id, o->seq, s->id);
	ranges[i].live = 0;
	/* unmapped: a late copy from it is caught by run_until's mincore check */
	munmap(p, ranges[i].n);
	RETURN(CUDA_SUCCESS);
}

/* ---- copies ------------------------------------------------------------------- */

CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream hs)
{
	ENTER("cuMemcpyHtoDAsync_v2");
	if (verbose)
		logmsg("cuMemcpyHtoDAsync_v2(0x%llx, %p, %s, stream %p)", dst, src, fmtsize(n), (void *)hs);
	NEEDCTX();
	struct fstream *s = NULL;
	if (hs && (uintptr_t)hs != 1 && (uintptr_t)hs != 2 && !(s = find_stream(hs))) {
		violation("cuMemcpyHtoDAsync_v2: unknown stream %p", (void *)hs);
		RETURN(CUDA_ERROR_INVALID_HANDLE);
	}
	if (n == 0)
		RETURN(CUDA_SUCCESS);
	if (!src) {
		violation("cuMemcpyHtoDAsync_v2: NULL source");
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	if (!find_alloc(dst, n)) {
		violation("cuMemcpyHtoDAsync_v2: [0x%llx, +%s) not inside one device allocation", dst, fmtsize(n));
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	INJECT(CUDA_ERROR_INVALID_VALUE);
	if (!mapped(src, n)) {
		violation("cuMemcpyHtoDAsync_v2: source [%p, +%s) not mapped", src, fmtsize(n));
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	int ri = range_of(src, n);
	if (ri < 0 && range_overlapping(src, n) >= 0) {
		violation("cuMemcpyHtoDAsync_v2: source [%p, +%s) is partly registered", src, fmtsize(n));
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	copied_bytes += n;
	if (ri < 0 || !s) {
		/* pageable memory (staged by the driver before returning), or the
		 * legacy stream: run now */
		if (ri < 0)
			pageable_copies++;
		if (s)
			run_until(s, s->issued);
		memcpy((void *)(uintptr_t)dst, src, n);
		RETURN(CUDA_SUCCESS);
	}
	struct op *o = calloc(1, sizeof *o);
	o->dst = (char *)(uintptr_t)dst;
	o->src = src;
	o->n = n;
	o->reg = ri + 1;
	o->seq = ++seqno;
	if (s->tail)
		s->tail->next = o;
	else
		s->head = o;
	s->tail = o;
	s->issued++;
	deferred_copies++;
	RETURN(CUDA_SUCCESS);
}

CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n)
{
	ENTER("cuMemcpyDtoH_v2");
	if (verbose)
		logmsg("cuMemcpyDtoH_v2(%p, 0x%llx, %s)", dst, src, fmtsize(n));
	NEEDCTX();
	if (n == 0)
		RETURN(CUDA_SUCCESS);
	if (!dst) {
		violation("cuMemcpyDtoH_v2: NULL destination");
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	if (!find_alloc(src, n)) {
		violation("cuMemcpyDtoH_v2: [0x%llx, +%s) not inside one device allocation", src, fmtsize(n));
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	INJECT(CUDA_ERROR_INVALID_VALUE);
	struct fstream *s;
	struct op *o = pending_to((char *)(uintptr_t)src, n, &s);
	if (o)
		violation("cuMemcpyDtoH_v2: reads [0x%llx, +%s) while copy #%llu into it is pending on non-blocking stream %d",
			  src, fmtsize(n), o->seq, s->id);
	memcpy(dst, (void *)(uintptr_t)src, n);
	dtoh_bytes += n;
	RETURN(CUDA_SUCCESS);
}

/* ---- streams and events ------------------------------------------------------ */

CUresult cuStreamCreate(CUstream *ps, unsigned int flags)
{
	ENTER("cuStreamCreate");
	if (verbose)
		logmsg("cuStreamCreate(%p, flags=0x%x)", (void *)ps, flags);
	if (!ps) {
		violation("cuStreamCreate: NULL pointer");
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	NEEDCTX();
	if (flags & ~CU_STREAM_NON_BLOCKING) {
		violation("cuStreamCreate: unknown flags 0x%x", flags);
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	INJECT(CUDA_ERROR_OUT_OF_MEMORY);
	struct fstream *s = calloc(1, sizeof *s);
	s->magic = 0x5354524d;
	s->flags = flags;
	s->id = nstreams_total++;
	s->next = streams;
	streams = s;
	*ps = s;
	if (verbose)
		logmsg("  -> stream %d (%p)", s->id, (void *)s);
	RETURN(CUDA_SUCCESS);
}

CUresult cuStreamDestroy_v2(CUstream hs)
{
	ENTER("cuStreamDestroy_v2");
	if (verbose)
		logmsg("cuStreamDestroy_v2(%p)", (void *)hs);
	NEEDCTX();
	struct fstream **pp, *s;
	for (pp = &streams; (s = *pp); pp = &s->next)
		if (s == hs)
			break;
	if (!s) {
		violation("cuStreamDestroy_v2: unknown stream %p", (void *)hs);
		RETURN(CUDA_ERROR_INVALID_HANDLE);
	}
	INJECT(CUDA_ERROR_UNKNOWN);
	/* legal: pending work completes before the resources go */
	run_until(s, s->issued);
	struct fevent *e;
	for (e = events; e; e = e->next)
		if (e->s == s)
			e->s = NULL;
	*pp = s->next;
	s->magic = 0;
	free(s);
	RETURN(CUDA_SUCCESS);
}

CUresult cuStreamSynchronize(CUstream hs)
{
	ENTER("cuStreamSynchronize");
	if (verbose)
		logmsg("cuStreamSynchronize(%p)", (void *)hs);
	NEEDCTX();
	if (!hs || (uintptr_t)hs == 1 || (uintptr_t)hs == 2)
		RETURN(CUDA_SUCCESS); /* legacy stream: it holds nothing here */
	struct fstream *s = find_stream(hs);
	if (!s) {
		violation("cuStreamSynchronize: unknown stream %p", (void *)hs);
		RETURN(CUDA_ERROR_INVALID_HANDLE);
	}
	INJECT(CUDA_ERROR_UNKNOWN);
	run_until(s, s->issued);
	RETURN(CUDA_SUCCESS);
}

CUresult cuEventCreate(CUevent *pe, unsigned int flags)
{
	ENTER("cuEventCreate");
	if (verbose)
		logmsg("cuEventCreate(%p, flags=0x%x)", (void *)pe, flags);
	if (!pe) {
		violation("cuEventCreate: NULL pointer");
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	NEEDCTX();
	if ((flags & ~CU_EVENT_ALL) || ((flags & CU_EVENT_INTERPROCESS) && !(flags & CU_EVENT_DISABLE_TIMING))) {
		violation("cuEventCreate: bad flags 0x%x", flags);
		RETURN(CUDA_ERROR_INVALID_VALUE);
	}
	INJECT(CUDA_ERROR_OUT_OF_MEMORY);
	struct fevent *e = calloc(1, sizeof *e);
	e->magic = 0x45564e54;
	e->flags = flags;
	e->id = nevents_total++;
	e->next = events;
	events = e;
	*pe = e;
	RETURN(CUDA_SUCCESS);
}

CUresult cuEventRecord(CUevent he, CUstream hs)
{
	ENTER("cuEventRecord");
	if (verbose)
		logmsg("cuEventRecord(%p, stream %p)", (void *)he, (void *)hs);
	NEEDCTX();
	struct fevent *e = find_event(he);
	if (!e) {
		violation("cuEventRecord: unknown event %p", (void *)he);
		RETURN(CUDA_ERROR_INVALID_HANDLE);
	}
	struct fstream *s = NULL;
	if (hs && (uintptr_t)hs != 1 && (uintptr_t)hs != 2 && !(s = find_stream(hs))) {
		violation("cuEventRecord: unknown stream %p", (void *)hs);
		RETURN(CUDA_ERROR_INVALID_HANDLE);
	}
	INJECT(CUDA_ERROR_INVALID_VALUE);
	e->s = s;
	e->pos = s ? s->issued : 0;
	e->recorded = 1;
	RETURN(CUDA_SUCCESS);
}

CUresult cuEventSynchronize(CUevent he)
{
	ENTER("cuEventSynchronize");
	if (verbose)
		logmsg("cuEventSynchronize(%p)", (void *)he);
	NEEDCTX();
	struct fevent *e = find_event(he);
	if (!e) {
		violation("cuEventSynchronize: unknown event %p", (void *)he);
		RETURN(CUDA_ERROR_INVALID_HANDLE);
	}
	INJECT(CUDA_ERROR_UNKNOWN);
	if (e->s)
		run_until(e->s, e->pos);
	RETURN(CUDA_SUCCESS);
}

CUresult cuEventDestroy_v2(CUevent he)
{
	ENTER("cuEventDestroy_v2");
	if (verbose)
		logmsg("cuEventDestroy_v2(%p)", (void *)he);
	NEEDCTX();
	struct fevent **pp, *e;
	for (pp = &events; (e = *pp); pp = &e->next)
		if (e == he)
			break;
	if (!e) {
		violation("cuEventDestroy_v2: unknown event %p", (void *)he);
		RETURN(CUDA_ERROR_INVALID_HANDLE);
	}
	INJECT(CUDA_ERROR_UNKNOWN);
	*pp = e->next;
	e->magic = 0;
	free(e);
	RETURN(CUDA_SUCCESS);
}

/* ---- summary ------------------------------------------------------------------ */

static void summary(void)
{
	pthread_mutex_lock(&mu);
	summary_locked("exit");
	pthread_mutex_unlock(&mu);
	const char *rc = getenv("FAKECUDA_VIOLATION_RC");
	if (violations && rc && *rc)
		_exit(atoi(rc));
}

static void summary_locked(const char *why)
{
	int i, live_regs = 0, live_pinned = 0, nalloc = 0, nstr = 0, nev = 0, pend = 0;
	struct alloc *a;
	struct fstream *s;
	struct fevent *e;
	for (i = 0; i < nranges; i++)
		if (ranges[i].live) {
			if (ranges[i].pinned_alloc)
				live_pinned++;
			else
				live_regs++;
		}
	for (a = allocs; a; a = a->next)
		nalloc++;
	for (s = streams; s; s = s->next) {
		nstr++;
		pend += s->head != NULL;
	}
	for (e = events; e; e = e->next)
		nev++;
	fprintf(logf, "fakecuda: calls (%s):", why);
	for (i = 0; i < NFUNCS && fnames[i]; i++)
		fprintf(logf, " %s=%llu", fnames[i], fcalls[i]);
	fprintf(logf, "\n");
	fprintf(logf,
		"fakecuda: summary violations=%llu copied=%llu deferred_copies=%llu pageable_copies=%llu "
		"dtoh=%llu leaks: allocations=%d registrations=%d pinned=%d streams=%d events=%d "
		"ctx_refs=%d streams_with_pending=%d\n",
		violations, copied_bytes, deferred_copies, pageable_copies, dtoh_bytes, nalloc, live_regs,
		live_pinned, nstr, nev, primary.refs, pend);
	fflush(logf);
}

/* ---- cuFile (GPUDirect Storage), same library -------------------------------
 * Link or copy this library as libcufile.so.0 too (a symbolic link shares the
 * state, so cuFileRead can fill device memory from cuMemAlloc). CUfileError_t
 * is returned by value, as the real library does: on x86-64 and arm64 the two
 * ints come back packed in one register, err in the low half.
 *   FAKECUFILE_OPEN_ERR=err,cu  cuFileDriverOpen returns {err, cu}
 */

typedef struct {
	int err;     /* CUfileOpError; 0 success, 5000 + n errors */
	CUresult cu; /* CUresult when err is CU_FILE_CUDA_DRIVER_ERROR */
} CUfileError_t;

typedef struct {
	int type; /* CU_FILE_HANDLE_TYPE_OPAQUE_FD = 1 */
	union {
		int fd;
		void *handle;
	} handle;
	const void *fs_ops;
} CUfileDescr_t;

_Static_assert(sizeof(CUfileDescr_t) == 24, "CUfileDescr_t is 24 bytes on LP64");
_Static_assert(__builtin_offsetof(CUfileDescr_t, handle) == 8, "union at 8");
_Static_assert(__builtin_offsetof(CUfileDescr_t, fs_ops) == 16, "fs_ops at 16");

struct cufh {
	uint32_t magic;
	int fd;
};

static int cufile_open;

CUfileError_t cuFileDriverOpen(void)
{
	CUfileError_t r = {0, 0};
	const char *s = getenv("FAKECUFILE_OPEN_ERR");
	pthread_mutex_lock(&mu);
	count("cuFileDriverOpen");
	if (s && *s) {
		sscanf(s, "%d,%d", &r.err, &r.cu);
		logmsg("cuFileDriverOpen: returning {%d, %d}", r.err, r.cu);
	} else
		cufile_open = 1;
	pthread_mutex_unlock(&mu);
	return r;
}

CUfileError_t cuFileHandleRegister(void **fh, CUfileDescr_t *d)
{
	CUfileError_t r = {0, 0};
	pthread_mutex_lock(&mu);
	count("cuFileHandleRegister");
	if (verbose && d)
		logmsg("cuFileHandleRegister(%p, {type %d, fd %d, fs_ops %p})", (void *)fh, d->type, d->handle.fd,
		       d->fs_ops);
	if (!cufile_open) {
		violation("cuFileHandleRegister before cuFileDriverOpen");
		r.err = 5001; /* CU_FILE_DRIVER_NOT_INITIALIZED */
	} else if (!fh || !d) {
		violation("cuFileHandleRegister: NULL argument");
		r.err = 5022; /* CU_FILE_INVALID_VALUE */
	} else if (d->type != 1) {
		violation("cuFileHandleRegister: handle type %d, want 1 (CU_FILE_HANDLE_TYPE_OPAQUE_FD)", d->type);
		r.err = 5019; /* CU_FILE_INVALID_FILE_TYPE */
	} else if (d->fs_ops) {
		violation("cuFileHandleRegister: fs_ops %p, want NULL for a kernel file system", d->fs_ops);
		r.err = 5022;
	} else {
		int fl = fcntl(d->handle.fd, F_GETFL);
		if (fl < 0) {
			violation("cuFileHandleRegister: fd %d is not open (layout or width wrong?)", d->handle.fd);
			r.err = 5022;
		} else {
			if (!(fl & O_DIRECT))
				warn("cuFileHandleRegister: fd %d lacks O_DIRECT (GDS needs it outside compat mode)",
				     d->handle.fd);
			struct cufh *h = calloc(1, sizeof *h);
			h->magic = 0x43554648;
			h->fd = d->handle.fd;
			*fh = h;
		}
	}
	pthread_mutex_unlock(&mu);
	return r;
}

void cuFileHandleDeregister(void *fh)
{
	pthread_mutex_lock(&mu);
	count("cuFileHandleDeregister");
	struct cufh *h = fh;
	if (!h || h->magic != 0x43554648)
		violation("cuFileHandleDeregister: bad handle %p", fh);
	else {
		h->magic = 0;
		free(h);
	}
	pthread_mutex_unlock(&mu);
}

CUfileError_t cuFileBufRegister(const void *p, size_t n, int flags)
{
	CUfileError_t r = {0, 0};
	pthread_mutex_lock(&mu);
	count("cuFileBufRegister");
	if (verbose)
		logmsg("cuFileBufRegister(%p, %s, flags=%d)", p, fmtsize(n), flags);
	if (!find_alloc((CUdeviceptr)(uintptr_t)p, n)) {
		violation("cuFileBufRegister: [%p, +%s) is not device memory", p, fmtsize(n));
		r.err = 5013; /* CU_FILE_CUDA_MEMORY_TYPE_INVALID */
	} else if (flags != 0) {
		violation("cuFileBufRegister: flags %d", flags);
		r.err = 5022;
	}
	pthread_mutex_unlock(&mu);
	return r;
}

CUfileError_t cuFileBufDeregister(const void *p)
{
	CUfileError_t r = {0, 0};
	pthread_mutex_lock(&mu);
	count("cuFileBufDeregister");
	if (!find_alloc((CUdeviceptr)(uintptr_t)p, 1)) {
		violation("cuFileBufDeregister: %p is not device memory", p);
		r.err = 5023; /* CU_FILE_MEMORY_NOT_REGISTERED */
	}
	pthread_mutex_unlock(&mu);
	return r;
}

ssize_t cuFileRead(void *fh, void *base, size_t size, off_t foff, off_t boff)
{
	struct cufh *h = fh;
	ssize_t got = 0;
	pthread_mutex_lock(&mu);
	count("cuFileRead");
	if (verbose)
		logmsg("cuFileRead(%p, %p, %s, file_offset=%lld, buf_offset=%lld)", fh, base, fmtsize(size),
		       (long long)foff, (long long)boff);
	if (!h || h->magic != 0x43554648) {
		violation("cuFileRead: bad handle %p", fh);
		pthread_mutex_unlock(&mu);
		return -5026; /* -CU_FILE_HANDLE_NOT_REGISTERED */
	}
	if (foff < 0 || boff < 0 || !find_alloc((CUdeviceptr)(uintptr_t)base + boff, size)) {
		violation("cuFileRead: destination [%p+%lld, +%s) not device memory", base, (long long)boff,
			  fmtsize(size));
		pthread_mutex_unlock(&mu);
		return -5014; /* -CU_FILE_CUDA_POINTER_RANGE_ERROR */
	}
	/* DMA through an aligned bounce buffer, as O_DIRECT wants */
	size_t chunk = 1 << 20;
	void *bounce = NULL;
	if (posix_memalign(&bounce, 4096, chunk)) {
		pthread_mutex_unlock(&mu);
		return -1;
	}
	while ((size_t)got < size) {
		size_t want = size - got < chunk ? size - got : chunk;
		size_t aligned = (want + 4095) & ~(size_t)4095;
		ssize_t k = pread(h->fd, bounce, aligned, foff + got);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			got = got ? got : -1;
			break;
		}
		if ((size_t)k > want)
			k = want;
		memcpy((char *)base + boff + got, bounce, k);
		got += k;
		if ((size_t)k < want)
			break;
	}
	free(bounce);
	pthread_mutex_unlock(&mu);
	return got;
}

/* ---- control, for tests in one process --------------------------------------
 * None of these exist in the real driver; a test binds them next to it.
 */

/* fakecuda_fail makes the n-th call from now of function name fail (n = 0:
 * no injected failure). */
void fakecuda_fail(const char *name, long n)
{
	int i;
	pthread_mutex_lock(&mu);
	fail_name[0] = 0;
	fail_at = 0;
	if (name && n > 0 && strlen(name) < sizeof fail_name) {
		long base = 0;
		for (i = 0; i < NFUNCS && fnames[i]; i++)
			if (strcmp(fnames[i], name) == 0)
				base = (long)fcalls[i];
		strcpy(fail_name, name);
		fail_at = base + n;
	}
	pthread_mutex_unlock(&mu);
}

/* fakecuda_calls returns the calls of function name so far. */
unsigned long long fakecuda_calls(const char *name)
{
	int i;
	unsigned long long n = 0;
	pthread_mutex_lock(&mu);
	for (i = 0; i < NFUNCS && fnames[i]; i++)
		if (strcmp(fnames[i], name) == 0)
			n = fcalls[i];
	pthread_mutex_unlock(&mu);
	return n;
}

/* fakecuda_stats fills out[0..8]: violations, live allocations,
 * registrations, pinned blocks, streams, events, primary context
 * references, copies pending, and copies run from pageable memory. */
void fakecuda_stats(unsigned long long *out)
{
	int i;
	struct alloc *a;
	struct fstream *st;
	struct fevent *e;
	struct op *o;
	pthread_mutex_lock(&mu);
	memset(out, 0, 9 * sizeof *out);
	out[0] = violations;
	for (a = allocs; a; a = a->next)
		out[1]++;
	for (i = 0; i < nranges; i++)
		if (ranges[i].live)
			out[ranges[i].pinned_alloc ? 3 : 2]++;
	for (st = streams; st; st = st->next) {
		out[4]++;
		for (o = st->head; o; o = o->next)
			out[7]++;
	}
	for (e = events; e; e = e->next)
		out[5]++;
	out[6] = primary.refs;
	out[8] = pageable_copies;
	pthread_mutex_unlock(&mu);
}

/* fakecuda_reset forgets every live resource (leaked on purpose by a test
 * of a failure) and the violation count, as a fresh process would. */
void fakecuda_reset(void)
{
	int i;
	pthread_mutex_lock(&mu);
	while (streams) {
		struct fstream *st = streams;
		while (st->head) {
			struct op *o = st->head;
			st->head = o->next;
			free(o);
		}
		streams = st->next;
		free(st);
	}
	while (events) {
		struct fevent *e = events;
		events = e->next;
		free(e);
	}
	while (allocs) {
		struct alloc *a = allocs;
		allocs = a->next;
		munmap(a->p, a->mapped);
		devused -= a->n;
		free(a);
	}
	for (i = 0; i < nranges; i++)
		if (ranges[i].live && ranges[i].pinned_alloc)
			munmap(ranges[i].p, ranges[i].n);
	nranges = 0;
	violations = 0;
	primary.refs = 0;
	primary.alive = 0;
	fail_name[0] = 0;
	pthread_mutex_unlock(&mu);
}

/* fakecuda_set sets an option of the environment list at run time:
 * "strict_align", "no_readonly", "lax_unregister", "verbose". */
void fakecuda_set(const char *name, long v)
{
	pthread_mutex_lock(&mu);
	if (strcmp(name, "strict_align") == 0)
		strict_align = v != 0;
	else if (strcmp(name, "no_readonly") == 0)
		no_readonly = v != 0;
	else if (strcmp(name, "lax_unregister") == 0)
		lax_unregister = v != 0;
	else if (strcmp(name, "verbose") == 0)
		verbose = v != 0;
	pthread_mutex_unlock(&mu);
}

/* fakecuda_log sends the log to path (appending), or to stderr for "". */
void fakecuda_log(const char *path)
{
	pthread_mutex_lock(&mu);
	FILE *f = path && *path ? fopen(path, "a") : stderr;
	if (f) {
		if (logf && logf != stderr)
			fclose(logf);
		logf = f;
	}
	pthread_mutex_unlock(&mu);
}
