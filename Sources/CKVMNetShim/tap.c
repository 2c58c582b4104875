#include "kvmnet_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_tun.h>

int kvmnet_tap_create(const char *name, uint32_t owner, const char **failed_call) {
    const char *unused;
    if (failed_call == NULL) failed_call = &unused;
    *failed_call = NULL;

    if (strlen(name) >= IFNAMSIZ) { *failed_call = "name length"; return -EINVAL; }
    /* 1. Open the clone device; the tap belongs to this thread's network namespace. */
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) { *failed_call = "open /dev/net/tun"; return -errno; }

    /* 2. Create (IFF_TUN_EXCL: EBUSY when any link of that name exists; without it TUNSETIFF
     * would attach to an existing persistent tap), 3. own, 4. make persistent so it outlives this
     * descriptor. */
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    int err = 0;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) { *failed_call = "TUNSETIFF"; err = errno == EBUSY ? -EEXIST : -errno; }
    else if (ioctl(fd, TUNSETOWNER, (unsigned long)owner) < 0) { *failed_call = "TUNSETOWNER"; err = -errno; }
    else if (ioctl(fd, TUNSETPERSIST, 1UL) < 0) { *failed_call = "TUNSETPERSIST"; err = -errno; }
    /* On failure the tap is not persistent yet: closing the descriptor removes it. */
    close(fd);
    return err;
}
