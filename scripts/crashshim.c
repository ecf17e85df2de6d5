/*
 * crashshim: an LD_PRELOAD library that keeps, beside a folder, the image a power cut would leave of
 * it: each file as of its last fsync. scripts/crash-campaign --power-loss runs smetsd under it.
 *
 *   CRASHSHIM_DIR=/state CRASHSHIM_SHADOW=/shadow LD_PRELOAD=crashshim.so smetsd ...
 *
 * Writes to a file directly in CRASHSHIM_DIR (pwrite, pwrite64, write) are recorded as byte ranges
 * per file (by inode, so every descriptor of the file counts, as the kernel's page cache does). When
 * fsync or fdatasync of the file succeeds, the ranges written since are copied from the file into
 * its twin in CRASHSHIM_SHADOW and the twin takes the file's size (ftruncate). Nothing else reaches
 * the shadow: after a SIGKILL it holds exactly what was synced. A kill in the middle of that copy
 * leaves part of the last fsync's writes, which is also a state a power cut may leave.
 *
 * Simplifications: creating and unlinking a file count as durable at once (SQLite fsyncs the folder
 * after creating its journal); -shm files are not mirrored (mmapped, and rebuilt from the WAL by the
 * first connection after a crash); only the first directory level is watched.
 *
 * The shadow must start as a copy of the folder (the campaign copies it before starting smetsd).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FILES 64
#define MAX_FDS 65536

struct range { off_t offset; size_t length; };

struct tracked {
    int used;
    dev_t dev;
    ino_t ino;
    char name[NAME_MAX + 1];
    struct range *ranges;
    size_t count, capacity;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct tracked files[MAX_FILES];
static signed char fd_file[MAX_FDS]; /* index + 1 into files, 0 for untracked */
static char watched[PATH_MAX];
static char shadow[PATH_MAX];
static size_t watched_length;
static int enabled;

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_unlink)(const char *);

__attribute__((constructor)) static void setup(void) {
    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_openat64 = dlsym(RTLD_NEXT, "openat64");
    real_close = dlsym(RTLD_NEXT, "close");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    const char *dir = getenv("CRASHSHIM_DIR"), *twin = getenv("CRASHSHIM_SHADOW");
    if (!dir || !twin || !realpath(dir, watched) || !realpath(twin, shadow)) return;
    watched_length = strlen(watched);
    enabled = 1;
}

/* The name of `path` when it is a file directly in the watched folder (not a -shm), else NULL. */
static const char *watched_name(const char *path) {
    char resolved[PATH_MAX];
    if (!enabled || !path) return NULL;
    /* The file may not exist yet: resolve the folder part only. */
    const char *slash = strrchr(path, '/');
    if (!slash) return NULL;
    char folder[PATH_MAX];
    size_t length = (size_t)(slash - path);
    if (length == 0 || length >= sizeof folder) return NULL;
    memcpy(folder, path, length);
    folder[length] = 0;
    if (!realpath(folder, resolved) || strcmp(resolved, watched) != 0) return NULL;
    const char *name = slash + 1;
    size_t name_length = strlen(name);
    if (name_length == 0 || name_length > NAME_MAX) return NULL;
    if (name_length >= 4 && strcmp(name + name_length - 4, "-shm") == 0) return NULL;
    return name;
}

/* `out` has room for PATH_MAX + NAME_MAX + 2 bytes. */
static void shadow_path(char *out, const char *name) { snprintf(out, PATH_MAX + NAME_MAX + 2, "%s/%s", shadow, name); }

static void track(int fd, const char *name) {
    struct stat st;
    if (fd < 0 || fd >= MAX_FDS || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
    pthread_mutex_lock(&lock);
    int slot = -1;
    for (int i = 0; i < MAX_FILES; i++) {
        if (files[i].used && files[i].dev == st.st_dev && files[i].ino == st.st_ino) { slot = i; break; }
    }
    if (slot < 0) {
        for (int i = 0; i < MAX_FILES; i++) {
            if (!files[i].used) { slot = i; break; }
        }
        if (slot >= 0) {
            struct tracked *file = &files[slot];
            file->used = 1;
            file->dev = st.st_dev;
            file->ino = st.st_ino;
            snprintf(file->name, sizeof file->name, "%s", name);
            file->count = 0;
            /* A file the shadow does not have yet exists there empty (its creation counts as durable). */
            char twin[PATH_MAX + NAME_MAX + 2];
            shadow_path(twin, name);
            int created = real_open(twin, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
            if (created >= 0) real_close(created);
        }
    }
    if (slot >= 0) fd_file[fd] = (signed char)(slot + 1);
    pthread_mutex_unlock(&lock);
}

static void record(int fd, off_t offset, ssize_t written) {
    if (written <= 0 || fd < 0 || fd >= MAX_FDS || !fd_file[fd]) return;
    pthread_mutex_lock(&lock);
    int slot = fd_file[fd] - 1;
    struct tracked *file = &files[slot];
    if (file->used) {
        if (file->count && file->ranges[file->count - 1].offset + (off_t)file->ranges[file->count - 1].length == offset) {
            file->ranges[file->count - 1].length += (size_t)written;
        } else {
            if (file->count == file->capacity) {
                size_t capacity = file->capacity ? file->capacity * 2 : 64;
                struct range *grown = realloc(file->ranges, capacity * sizeof *grown);
                if (!grown) abort(); /* a shim that lost a write would report a false success */
                file->ranges = grown;
                file->capacity = capacity;
            }
            file->ranges[file->count++] = (struct range){offset, (size_t)written};
        }
    }
    pthread_mutex_unlock(&lock);
}

/* After a successful fsync of `fd`: what the file holds in the recorded ranges goes to its twin. */
static void persist(int fd) {
    if (fd < 0 || fd >= MAX_FDS || !fd_file[fd]) return;
    pthread_mutex_lock(&lock);
    struct tracked *file = &files[fd_file[fd] - 1];
    struct stat st;
    if (file->used && fstat(fd, &st) == 0) {
        char twin[PATH_MAX + NAME_MAX + 2];
        shadow_path(twin, file->name);
        int out = real_open(twin, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (out < 0) abort();
        static char buffer[1 << 16];
        for (size_t i = 0; i < file->count; i++) {
            off_t offset = file->ranges[i].offset;
            off_t end = offset + (off_t)file->ranges[i].length;
            if (end > st.st_size) end = st.st_size;
            while (offset < end) {
                size_t chunk = (size_t)(end - offset) < sizeof buffer ? (size_t)(end - offset) : sizeof buffer;
                ssize_t got = pread(fd, buffer, chunk, offset);
                if (got <= 0) break;
                if (real_pwrite(out, buffer, (size_t)got, offset) != got) abort();
                offset += got;
            }
        }
        if (ftruncate(out, st.st_size) != 0) abort();
        real_close(out);
        file->count = 0;
    }
    pthread_mutex_unlock(&lock);
}

static int open_mode_needed(int flags) { return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE; }

int open(const char *path, int flags, ...) {
    mode_t mode = 0;
    if (open_mode_needed(flags)) { va_list args; va_start(args, flags); mode = va_arg(args, mode_t); va_end(args); }
    int fd = real_open(path, flags, mode);
    const char *name = fd >= 0 ? watched_name(path) : NULL;
    if (name) track(fd, name);
    return fd;
}

int open64(const char *path, int flags, ...) {
    mode_t mode = 0;
    if (open_mode_needed(flags)) { va_list args; va_start(args, flags); mode = va_arg(args, mode_t); va_end(args); }
    int fd = real_open64(path, flags, mode);
    const char *name = fd >= 0 ? watched_name(path) : NULL;
    if (name) track(fd, name);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...) {
    mode_t mode = 0;
    if (open_mode_needed(flags)) { va_list args; va_start(args, flags); mode = va_arg(args, mode_t); va_end(args); }
    int fd = real_openat(dirfd, path, flags, mode);
    const char *name = fd >= 0 && path[0] == '/' ? watched_name(path) : NULL;
    if (name) track(fd, name);
    return fd;
}

int openat64(int dirfd, const char *path, int flags, ...) {
    mode_t mode = 0;
    if (open_mode_needed(flags)) { va_list args; va_start(args, flags); mode = va_arg(args, mode_t); va_end(args); }
    int fd = real_openat64(dirfd, path, flags, mode);
    const char *name = fd >= 0 && path[0] == '/' ? watched_name(path) : NULL;
    if (name) track(fd, name);
    return fd;
}

int close(int fd) {
    if (fd >= 0 && fd < MAX_FDS && fd_file[fd]) {
        pthread_mutex_lock(&lock);
        fd_file[fd] = 0;
        pthread_mutex_unlock(&lock);
    }
    return real_close(fd);
}

ssize_t write(int fd, const void *buffer, size_t count) {
    off_t offset = (fd >= 0 && fd < MAX_FDS && fd_file[fd]) ? lseek(fd, 0, SEEK_CUR) : -1;
    ssize_t written = real_write(fd, buffer, count);
    if (offset >= 0) record(fd, offset, written);
    return written;
}

ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset) {
    ssize_t written = real_pwrite(fd, buffer, count, offset);
    record(fd, offset, written);
    return written;
}

ssize_t pwrite64(int fd, const void *buffer, size_t count, off64_t offset) {
    ssize_t written = real_pwrite64(fd, buffer, count, offset);
    record(fd, (off_t)offset, written);
    return written;
}

int fsync(int fd) {
    int result = real_fsync(fd);
    if (result == 0) persist(fd);
    return result;
}

int fdatasync(int fd) {
    int result = real_fdatasync(fd);
    if (result == 0) persist(fd);
    return result;
}

int unlink(const char *path) {
    int result = real_unlink(path);
    const char *name = result == 0 ? watched_name(path) : NULL;
    if (name) {
        char twin[PATH_MAX + NAME_MAX + 2];
        shadow_path(twin, name);
        real_unlink(twin);
        pthread_mutex_lock(&lock);
        for (int i = 0; i < MAX_FILES; i++) {
            if (files[i].used && strcmp(files[i].name, name) == 0) {
                files[i].used = 0;
                files[i].count = 0;
                for (int fd = 0; fd < MAX_FDS; fd++) {
                    if (fd_file[fd] == i + 1) fd_file[fd] = 0;
                }
            }
        }
        pthread_mutex_unlock(&lock);
    }
    return result;
}
