/*
 * syncwatch: an LD_PRELOAD library that records, for the fault-injection
 * suite, which bytes of the partition segment files a process made durable.
 *
 * After every successful fsync(2) or fdatasync(2) of a regular file whose
 * path ends in ".log" under a "logs" directory, it appends one line
 * "<size> <inode> <path>\n" to the file named by STROM_SYNC_JOURNAL, where
 * <size> is the file's size just before the call: every byte below it is
 * on stable storage. The inode tells a file from a later one of the same
 * name. The power-cut nemesis keeps those bytes and drops any
 * part of the rest, which is what losing the page cache does. It observes
 * the system calls themselves, so a missing fsync in Strom shows up as lost
 * data, never as a false "synced".
 *
 * Without STROM_SYNC_JOURNAL set it records nothing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int journal_fd = -1;

__attribute__((constructor)) static void syncwatch_init(void) {
    const char *path = getenv("STROM_SYNC_JOURNAL");
    if (path != NULL && path[0] != '\0') {
        journal_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    }
}

static int watched(const char *path) {
    size_t n = strlen(path);
    return n > 4 && strcmp(path + n - 4, ".log") == 0 && strstr(path, "/logs/") != NULL;
}

/* The file's size before the sync (and its inode), or -1 when it is not one
 * we watch. */
static long long size_before(int fd, char *path, size_t cap, unsigned long long *ino) {
    struct stat st;
    char link[64];
    ssize_t n;
    if (journal_fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        return -1;
    }
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, path, cap - 1);
    if (n <= 0) {
        return -1;
    }
    path[n] = '\0';
    *ino = (unsigned long long)st.st_ino;
    return watched(path) ? (long long)st.st_size : -1;
}

static void record(long long size, unsigned long long ino, const char *path) {
    char line[4200];
    int len = snprintf(line, sizeof line, "%lld %llu %s\n", size, ino, path);
    if (len > 0 && (size_t)len < sizeof line) {
        /* One O_APPEND write per line: lines of concurrent writers do not mix. */
        ssize_t ignored = write(journal_fd, line, (size_t)len);
        (void)ignored;
    }
}

int fsync(int fd) {
    static int (*real)(int) = NULL;
    char path[4096];
    unsigned long long ino = 0;
    long long size;
    int r;
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    }
    size = size_before(fd, path, sizeof path, &ino);
    r = real(fd);
    if (r == 0 && size >= 0) {
        record(size, ino, path);
    }
    return r;
}

int fdatasync(int fd) {
    static int (*real)(int) = NULL;
    char path[4096];
    unsigned long long ino = 0;
    long long size;
    int r;
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    }
    size = size_before(fd, path, sizeof path, &ino);
    r = real(fd);
    if (r == 0 && size >= 0) {
        record(size, ino, path);
    }
    return r;
}
