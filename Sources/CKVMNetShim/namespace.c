#define _GNU_SOURCE
#include "kvmnet_shim.h"

#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

int kvmnet_setns_net(int fd) {
    return setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
}

int kvmnet_unshare_net(void) {
    return unshare(CLONE_NEWNET) < 0 ? -errno : 0;
}

int kvmnet_unshare_mount(void) {
    return unshare(CLONE_NEWNS) < 0 ? -errno : 0;
}

int kvmnet_make_mounts_slave(void) {
    return mount("none", "/", NULL, MS_SLAVE | MS_REC, NULL) < 0 ? -errno : 0;
}

int kvmnet_remount_sysfs(const char *name) {
    unsigned long flags = 0;
    struct statvfs st;
    if (statvfs("/sys", &st) == 0 && (st.f_flag & ST_RDONLY)) flags |= MS_RDONLY;
    /* A missing /sys mount (EINVAL) is fine: mount a fresh one anyway. */
    if (umount2("/sys", MNT_DETACH) < 0 && errno != EINVAL) return -errno;
    return mount(name, "/sys", "sysfs", flags, NULL) < 0 ? -errno : 0;
}
