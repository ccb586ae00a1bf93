// SPDX-License-Identifier: GPL-2.0
/*
 * ipvs-bpf-ctl: drive /proc/net/ip_vs_bpf from one process, the way the
 * daemon does, for tests and debugging.
 *
 *   ipvs-bpf-ctl attach <pinned map path> [abi]   open the map, write
 *                                                 "attach <fd> <abi>"
 *   ipvs-bpf-ctl attach-fd <fd> [abi]             write it for a given fd
 *   ipvs-bpf-ctl cmd <text>                       write <text> as is
 *
 * Prints "ok" or "error <ERRNO-NAME> <errno>" and exits 0 or 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CTL "/proc/net/ip_vs_bpf"

static const char *errname(int e)
{
	switch (e) {
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case EPROTO: return "EPROTO";
	case EMEDIUMTYPE: return "EMEDIUMTYPE";
	case EMSGSIZE: return "EMSGSIZE";
	case EBUSY: return "EBUSY";
	case ENOENT: return "ENOENT";
	case EPERM: return "EPERM";
	case ERANGE: return "ERANGE";
	case E2BIG: return "E2BIG";
	case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	default: return "E?";
	}
}

static int ctl_write(const char *text)
{
	int fd = open(CTL, O_WRONLY);
	ssize_t n;

	if (fd < 0) {
		printf("error %s %d (open " CTL ")\n", errname(errno), errno);
		return 1;
	}
	n = write(fd, text, strlen(text));
	if (n < 0) {
		printf("error %s %d\n", errname(errno), errno);
		close(fd);
		return 1;
	}
	close(fd);
	printf("ok\n");
	return 0;
}

static int obj_get(const char *path)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.pathname = (unsigned long)path;
	return syscall(SYS_bpf, BPF_OBJ_GET, &attr, sizeof(attr));
}

int main(int argc, char **argv)
{
	char buf[128];
	int fd;

	if (argc >= 3 && !strcmp(argv[1], "attach")) {
		fd = obj_get(argv[2]);
		if (fd < 0) {
			printf("error %s %d (BPF_OBJ_GET)\n", errname(errno), errno);
			return 1;
		}
		snprintf(buf, sizeof(buf), "attach %d %s\n", fd,
			 argc > 3 ? argv[3] : "1");
		return ctl_write(buf);
	}
	if (argc >= 3 && !strcmp(argv[1], "attach-fd")) {
		snprintf(buf, sizeof(buf), "attach %s %s\n", argv[2],
			 argc > 3 ? argv[3] : "1");
		return ctl_write(buf);
	}
	if (argc >= 3 && !strcmp(argv[1], "cmd"))
		return ctl_write(argv[2]);
	fprintf(stderr, "usage: %s attach <pin> [abi] | attach-fd <fd> [abi] | cmd <text>\n",
		argv[0]);
	return 2;
}
