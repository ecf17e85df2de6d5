// faultfs: an LD_PRELOAD shim that makes the disk fail on demand, for the disk-fault tests
// (docs/reliability.md, "Disk and resource faults").
//
// Only files under $FAULTFS_DIR are touched. At every write or sync of such a file the shim reads
// $FAULTFS_CONTROL, a one-line file: empty or absent means no fault; "fsync EIO" fails fsync and
// fdatasync; "write ENOSPC" (or EIO, EROFS) fails write, pwrite and writev. The test changes the file
// while the daemon runs, so a fault starts and ends without a restart.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum operation { OP_WRITE, OP_SYNC };

// The errno to fail `op` on `fd` with, or 0.
static int fault_for(int fd, enum operation op) {
    const char *dir = getenv("FAULTFS_DIR"), *control = getenv("FAULTFS_CONTROL");
    if (!dir || !control) return 0;
    int saved = errno;
    char mode[64] = {0};
    int cfd = open(control, O_RDONLY | O_CLOEXEC);
    if (cfd < 0) { errno = saved; return 0; }
    ssize_t n = read(cfd, mode, sizeof mode - 1);
    close(cfd);
    if (n <= 0) { errno = saved; return 0; }
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, target, sizeof target - 1);
    errno = saved;
    if (len <= 0) return 0;
    target[len] = 0;
    if (strncmp(target, dir, strlen(dir)) != 0) return 0;
    const char *wanted = op == OP_SYNC ? "fsync " : "write ";
    if (strncmp(mode, wanted, 6) != 0) return 0;
    if (strncmp(mode + 6, "EIO", 3) == 0) return EIO;
    if (strncmp(mode + 6, "ENOSPC", 6) == 0) return ENOSPC;
    if (strncmp(mode + 6, "EROFS", 5) == 0) return EROFS;
    return 0;
}

#define REAL(name) static __typeof__(&name) real_##name; if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

int fsync(int fd) {
    REAL(fsync);
    int fault = fault_for(fd, OP_SYNC);
    if (fault) { errno = fault; return -1; }
    return real_fsync(fd);
}

int fdatasync(int fd) {
    REAL(fdatasync);
    int fault = fault_for(fd, OP_SYNC);
    if (fault) { errno = fault; return -1; }
    return real_fdatasync(fd);
}

ssize_t write(int fd, const void *buffer, size_t count) {
    REAL(write);
    int fault = fault_for(fd, OP_WRITE);
    if (fault) { errno = fault; return -1; }
    return real_write(fd, buffer, count);
}

ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset) {
    REAL(pwrite);
    int fault = fault_for(fd, OP_WRITE);
    if (fault) { errno = fault; return -1; }
    return real_pwrite(fd, buffer, count, offset);
}

ssize_t pwrite64(int fd, const void *buffer, size_t count, off64_t offset) {
    REAL(pwrite64);
    int fault = fault_for(fd, OP_WRITE);
    if (fault) { errno = fault; return -1; }
    return real_pwrite64(fd, buffer, count, offset);
}

ssize_t writev(int fd, const struct iovec *vector, int count) {
    REAL(writev);
    int fault = fault_for(fd, OP_WRITE);
    if (fault) { errno = fault; return -1; }
    return real_writev(fd, vector, count);
}
