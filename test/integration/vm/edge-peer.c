// SPDX-License-Identifier: GPL-2.0-only
/*
 * Peers for the protocol-edge phase of the lab-VM BPF-mode test (test/integration/vm/ipvs-bpf-e2e.sh):
 * UDP datagrams of any size (fragmented when larger than the MTU), IPv4 options (Record Route, set with
 * IP_OPTIONS) and SCTP, none of which Node's socket API offers. Clients print key=value lines for
 * results.kv; servers print one line per datagram or connection. Payloads are a seeded byte pattern, so
 * both ends check every byte.
 *
 *   edge-peer udp-serve <addr> <port> plain|opt
 *       echo server: a request is [u32 reply length][u32 seed][pattern]; the reply is the same header and
 *       pattern, reply length bytes in all. Prints "udp peer=<ip>:<port> len=<n> ok=<0|1> opts=<n>" per
 *       datagram (opts: IP option bytes it arrived with); with opt, replies carry Record Route.
 *   edge-peer udp <prefix> <bind-ip> <bind-port> <ip> <port> plain|opt <reqlen>:<replylen>...
 *       one socket, one request per pair, one attempt each (5 s); prints <prefix>.<req>_<reply>=ok or
 *       fail:<why>, and <prefix>.<req>_<reply>.opts=<IP option bytes of the reply>.
 *   edge-peer stream-serve tcp|sctp <addr> <port>
 *       echo server, a process per connection; first sends "peer <ip> <port> opts <n>\n" (opts: IP
 *       option bytes of the TCP SYN, which the server then echoes on every segment it sends).
 *   edge-peer stream <prefix> tcp|sctp <bind-ip> <bind-port> <ip> <port> plain|opt <bytes> [<dir>]
 *       connects (4 s), reads the server's line, sends <bytes> of pattern while reading the echo back;
 *       prints <prefix>.connect, <prefix>.peer, <prefix>.srvopts and <prefix>.echo. With <dir>: then
 *       creates <dir>/<prefix>.held and waits (up to 120 s) for <dir>/release before closing.
 * Servers print "listening" once bound.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif
#define MAX_DGRAM 65000

/* Record Route with room for two addresses, padded to 12 bytes (IHL 8) */
static const unsigned char rr_opt[12] = { 7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0 };

static unsigned char pattern(uint32_t i, uint32_t seed)
{
	return (unsigned char)(i * 131u + seed + (i >> 9));
}

static void __attribute__((noreturn)) die(const char *what)
{
	fprintf(stderr, "edge-peer: %s: %s\n", what, strerror(errno));
	exit(2);
}

static struct sockaddr_in addr_of(const char *ip, const char *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };

	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
		fprintf(stderr, "edge-peer: bad address %s\n", ip);
		exit(2);
	}
	return a;
}

static int bound_socket(int type, int proto, const char *ip, const char *port)
{
	struct sockaddr_in a = addr_of(ip, port);
	int one = 1, fd = socket(AF_INET, type, proto);

	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)))
		die("bind");
	return fd;
}

static void set_opts(int fd)
{
	if (setsockopt(fd, IPPROTO_IP, IP_OPTIONS, rr_opt, sizeof(rr_opt)))
		die("IP_OPTIONS");
}

/* recv with the IP options it came with (IP_RECVOPTS); returns the length, *optlen the option bytes */
static ssize_t recv_opts(int fd, unsigned char *buf, size_t len, struct sockaddr_in *from, int *optlen)
{
	char cbuf[CMSG_SPACE(64)];
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_name = from, .msg_namelen = from ? sizeof(*from) : 0,
			    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(fd, &m, 0);

	*optlen = 0;
	for (c = CMSG_FIRSTHDR(&m); n >= 0 && c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVOPTS)
			*optlen = (int)(c->cmsg_len - CMSG_LEN(0));
	return n;
}

static void fill(unsigned char *buf, uint32_t len, uint32_t reply_len, uint32_t seed)
{
	uint32_t h[2] = { htonl(reply_len), htonl(seed) }, i;

	memcpy(buf, h, sizeof(h));
	for (i = 8; i < len; i++)
		buf[i] = pattern(i, seed);
}

/* checks header (reply length want_len, seed) and pattern; returns NULL or what is wrong */
static const char *check(const unsigned char *buf, ssize_t n, uint32_t want_len, uint32_t *seed)
{
	uint32_t h[2], i;

	if (n < 8)
		return "short";
	memcpy(h, buf, sizeof(h));
	*seed = ntohl(h[1]);
	if (want_len && (uint32_t)n != want_len)
		return "length";
	for (i = 8; i < (uint32_t)n; i++)
		if (buf[i] != pattern(i, *seed))
			return "bytes";
	return NULL;
}

static void __attribute__((noreturn)) udp_serve(char **argv)
{
	static unsigned char buf[MAX_DGRAM];
	int one = 1, fd = bound_socket(SOCK_DGRAM, 0, argv[0], argv[1]);
	struct sockaddr_in from;
	char ip[INET_ADDRSTRLEN];

	setsockopt(fd, IPPROTO_IP, IP_RECVOPTS, &one, sizeof(one));
	if (!strcmp(argv[2], "opt"))
		set_opts(fd);
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		uint32_t seed = 0, rlen;
		int optlen;
		ssize_t n = recv_opts(fd, buf, sizeof(buf), &from, &optlen);
		const char *bad;

		if (n < 0)
			die("recvmsg");
		bad = check(buf, n, 0, &seed);
		inet_ntop(AF_INET, &from.sin_addr, ip, sizeof(ip));
		printf("udp peer=%s:%u len=%zd ok=%d opts=%d\n", ip, ntohs(from.sin_port), n, !bad, optlen);
		fflush(stdout);
		if (bad)
			continue;
		memcpy(&rlen, buf, 4);
		rlen = ntohl(rlen);
		if (rlen < 8 || rlen > sizeof(buf))
			continue;
		fill(buf, rlen, rlen, seed);
		sendto(fd, buf, rlen, 0, (struct sockaddr *)&from, sizeof(from));
	}
}

static int udp_client(char **argv, int argc)
{
	static unsigned char buf[MAX_DGRAM], rbuf[MAX_DGRAM];
	const char *prefix = argv[0];
	int one = 1, fd = bound_socket(SOCK_DGRAM, 0, argv[1], argv[2]);
	struct sockaddr_in to = addr_of(argv[3], argv[4]);
	int i;

	setsockopt(fd, IPPROTO_IP, IP_RECVOPTS, &one, sizeof(one));
	if (!strcmp(argv[5], "opt"))
		set_opts(fd);
	if (connect(fd, (struct sockaddr *)&to, sizeof(to)))
		die("connect");
	for (i = 6; i < argc; i++) {
		unsigned int req = 0, rep = 0;
		uint32_t seed = 1000u + (uint32_t)i, got_seed = 0;
		struct pollfd p = { fd, POLLIN, 0 };
		const char *bad = NULL;
		int optlen = 0;
		ssize_t n;

		if (sscanf(argv[i], "%u:%u", &req, &rep) != 2 || req < 8 || rep < 8 || req > MAX_DGRAM || rep > MAX_DGRAM) {
			fprintf(stderr, "edge-peer: bad size pair %s\n", argv[i]);
			return 2;
		}
		fill(buf, req, rep, seed);
		if (send(fd, buf, req, 0) != (ssize_t)req) {
			bad = "send";
		} else if (poll(&p, 1, 5000) != 1) {
			bad = "timeout";
		} else {
			n = recv_opts(fd, rbuf, sizeof(rbuf), NULL, &optlen);
			bad = n < 0 ? "recv" : check(rbuf, n, rep, &got_seed);
			if (!bad && got_seed != seed)
				bad = "seed";
		}
		printf("%s.%u_%u=%s%s\n%s.%u_%u.opts=%d\n", prefix, req, rep, bad ? "fail:" : "ok", bad ? bad : "",
		       prefix, req, rep, optlen);
	}
	return 0;
}

static void stream_conn(int fd, int proto)
{
	static unsigned char buf[65536];
	struct sockaddr_in peer;
	socklen_t len = sizeof(peer);
	unsigned char opts[64];
	socklen_t olen = sizeof(opts);
	char ip[INET_ADDRSTRLEN], line[128];
	ssize_t n;

	getpeername(fd, (struct sockaddr *)&peer, &len);
	inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
	/* for TCP: the options of the SYN, reversed; the socket sends them on every segment */
	if (proto != IPPROTO_TCP || getsockopt(fd, IPPROTO_IP, IP_OPTIONS, opts, &olen))
		olen = 0;
	n = snprintf(line, sizeof(line), "peer %s %u opts %u\n", ip, ntohs(peer.sin_port), (unsigned int)olen);
	printf("%s %s", proto == IPPROTO_TCP ? "tcp" : "sctp", line);
	fflush(stdout);
	if (write(fd, line, (size_t)n) != n)
		return;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		ssize_t off = 0, w;

		for (; off < n; off += w) {
			w = write(fd, buf + off, (size_t)(n - off));
			if (w <= 0)
				return;
		}
	}
}

static int proto_of(const char *name)
{
	if (!strcmp(name, "tcp"))
		return IPPROTO_TCP;
	if (!strcmp(name, "sctp"))
		return IPPROTO_SCTP;
	fprintf(stderr, "edge-peer: unknown protocol %s\n", name);
	exit(2);
}

static void __attribute__((noreturn)) stream_serve(char **argv)
{
	int proto = proto_of(argv[0]);
	int fd = bound_socket(SOCK_STREAM, proto, argv[1], argv[2]);

	signal(SIGCHLD, SIG_IGN);
	if (listen(fd, 16))
		die("listen");
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int c = accept(fd, NULL, NULL);

		if (c < 0) {
			if (errno == EINTR)
				continue;
			die("accept");
		}
		if (fork() == 0) {
			close(fd);
			stream_conn(c, proto);
			_exit(0);
		}
		close(c);
	}
}

/* leaves the socket non-blocking */
static int connect_timeout(int fd, const struct sockaddr_in *to, int ms)
{
	int err = 0;
	socklen_t el = sizeof(err);
	struct pollfd p = { fd, POLLOUT, 0 };

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) && errno != EINPROGRESS)
		return -1;
	if (poll(&p, 1, ms) != 1) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
		errno = err;
		return -1;
	}
	return 0;
}

/* sends len bytes of pattern and reads them back, interleaved (non-blocking); NULL or what went wrong */
static const char *echo(int fd, uint32_t len)
{
	static unsigned char buf[65536];
	uint32_t sent = 0, got = 0, i;

	while (got < len) {
		struct pollfd p = { fd, POLLIN | (sent < len ? POLLOUT : 0), 0 };
		ssize_t n;

		if (poll(&p, 1, 10000) != 1)
			return "timeout";
		if ((p.revents & POLLOUT) && sent < len) {
			uint32_t k = len - sent < 16384 ? len - sent : 16384;

			for (i = 0; i < k; i++)
				buf[i] = pattern(sent + i, 7);
			n = write(fd, buf, k);
			if (n < 0 && errno != EAGAIN)
				return "write";
			if (n > 0)
				sent += (uint32_t)n;
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(fd, buf, sizeof(buf));
			if (n < 0 && errno == EAGAIN)
				continue;
			if (n <= 0)
				return "closed";
			for (i = 0; i < (uint32_t)n; i++)
				if (buf[i] != pattern(got + i, 7))
					return "bytes";
			got += (uint32_t)n;
		}
	}
	return NULL;
}

static int stream_client(char **argv, int argc)
{
	const char *prefix = argv[0];
	int proto = proto_of(argv[1]);
	int fd = bound_socket(SOCK_STREAM, proto, argv[2], argv[3]);
	struct sockaddr_in to = addr_of(argv[4], argv[5]);
	uint32_t len = (uint32_t)strtoul(argv[7], NULL, 10);
	char line[128], ip[64];
	unsigned int port = 0, opts = 0;
	size_t got = 0;
	const char *bad;

	if (!strcmp(argv[6], "opt"))
		set_opts(fd);
	if (connect_timeout(fd, &to, 4000)) {
		printf("%s.connect=fail:%s\n", prefix, strerror(errno));
		return 0;
	}
	printf("%s.connect=ok\n", prefix);
	/* the server's line, byte by byte (the echo follows it on the same stream) */
	while (got < sizeof(line) - 1) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (poll(&p, 1, 10000) != 1 || read(fd, line + got, 1) != 1)
			break;
		if (line[got++] == '\n')
			break;
	}
	line[got] = 0;
	if (sscanf(line, "peer %63s %u opts %u", ip, &port, &opts) != 3) {
		printf("%s.echo=fail:no server line\n", prefix);
		return 0;
	}
	printf("%s.peer=%s %u\n%s.srvopts=%u\n", prefix, ip, port, prefix, opts);
	bad = echo(fd, len);
	printf("%s.echo=%s%s\n", prefix, bad ? "fail:" : "ok", bad ? bad : "");
	fflush(stdout);
	if (argc > 8) {
		char held[512], rel[512];
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		struct stat st;
		int i, f;

		snprintf(held, sizeof(held), "%s/%s.held", argv[8], prefix);
		snprintf(rel, sizeof(rel), "%s/release", argv[8]);
		f = open(held, O_CREAT | O_WRONLY, 0644);
		if (f >= 0)
			close(f);
		for (i = 0; i < 2400 && stat(rel, &st); i++)
			nanosleep(&ts, NULL);
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 5 && !strcmp(argv[1], "udp-serve"))
		udp_serve(argv + 2);
	if (argc >= 9 && !strcmp(argv[1], "udp"))
		return udp_client(argv + 2, argc - 2);
	if (argc >= 5 && !strcmp(argv[1], "stream-serve"))
		stream_serve(argv + 2);
	if (argc >= 10 && !strcmp(argv[1], "stream"))
		return stream_client(argv + 2, argc - 2);
	fprintf(stderr, "usage: edge-peer udp-serve|udp|stream-serve|stream ... (see the head of edge-peer.c)\n");
	return 2;
}
