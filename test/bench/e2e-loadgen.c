// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench:e2e load generator: short TCP connections (connect, one small HTTP/1.0 request, read the response
 * to EOF, close), CONC of them in flight at all times, for SECONDS. One thread, epoll, non-blocking
 * sockets, so almost all of its CPU time is the kernel's TCP work, not ours.
 *
 *   e2e-loadgen DST_IP PORT CONC SECONDS SRC_IP[,SRC_IP...]
 *
 * Source addresses are used in turn (bound with IP_BIND_ADDRESS_NO_PORT, the port still chosen at connect),
 * which spreads the client tuples so a round does not come back to a client port IPVS still remembers.
 * Latency is connect() to EOF. Prints one JSON object: ok, errors by kind, seconds, cps, latency
 * percentiles in microseconds, responses per backend (the response body's first word).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_SRC 64
#define MAX_BACKENDS 16
#define CONN_TIMEOUT_NS (5LL * 1000000000LL)

enum err_kind { E_CONNECT, E_TIMEOUT, E_RESET, E_SHORT, E_SOCKET, E_KINDS };
static const char *const err_name[E_KINDS] = { "connect", "timeout", "reset", "short", "socket" };

struct slot {
	int fd;
	int sent;
	long long t0;
	size_t got;
	char buf[512];
};

static const char request[] = "GET / HTTP/1.0\r\nHost: vip\r\n\r\n";
static struct sockaddr_in dst;
static struct in_addr src[MAX_SRC];
static int nsrc, next_src;
static unsigned long long errors[E_KINDS];
static unsigned long long ok;
static unsigned int *lat;
static size_t nlat, caplat;
static char backend_name[MAX_BACKENDS][32];
static unsigned long long backend_count[MAX_BACKENDS];
static int nbackends;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void record_latency(long long ns)
{
	if (nlat == caplat) {
		caplat = caplat ? caplat * 2 : 65536;
		lat = realloc(lat, caplat * sizeof(*lat));
		if (!lat) {
			perror("realloc");
			exit(1);
		}
	}
	lat[nlat++] = (unsigned int)(ns / 1000);
}

/* The body is the backend's name: the text after the blank line, up to the first blank. */
static void count_backend(const char *resp, size_t len)
{
	const char *body = memmem(resp, len, "\r\n\r\n", 4);
	char name[32];
	size_t n = 0;
	int i;

	if (!body)
		return;
	body += 4;
	while (body + n < resp + len && n < sizeof(name) - 1 && body[n] > ' ')
		n++;
	memcpy(name, body, n);
	name[n] = 0;
	for (i = 0; i < nbackends; i++) {
		if (!strcmp(backend_name[i], name)) {
			backend_count[i]++;
			return;
		}
	}
	if (nbackends < MAX_BACKENDS) {
		strcpy(backend_name[nbackends], name);
		backend_count[nbackends++] = 1;
	}
}

static int cmp_uint(const void *a, const void *b)
{
	unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;

	return x < y ? -1 : x > y;
}

static unsigned int percentile(double p)
{
	size_t i;

	if (!nlat)
		return 0;
	i = (size_t)(p * (double)(nlat - 1) + 0.5);
	return lat[i];
}

/* Opens a new connection in slot s; returns 0, or -1 when no socket could be made. */
static int start(int ep, struct slot *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP };
	int one = 1;

	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		errors[E_SOCKET]++;
		return -1;
	}
	s->sent = 0;
	s->got = 0;
	s->t0 = now_ns();
	if (nsrc) {
		setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		a.sin_addr = src[next_src];
		next_src = (next_src + 1) % nsrc;
		if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			errors[E_SOCKET]++;
			close(s->fd);
			s->fd = -1;
			return -1;
		}
	}
	if (connect(s->fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS) {
		errors[E_CONNECT]++;
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	ev.data.ptr = s;
	epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
	return 0;
}

static void finish(struct slot *s, int kind)
{
	if (kind < 0) {
		ok++;
		record_latency(now_ns() - s->t0);
		count_backend(s->buf, s->got);
	} else {
		errors[kind]++;
	}
	close(s->fd); /* also removes it from the epoll set */
	s->fd = -1;
}

/* Advances one connection on an event; returns 1 when it is done (closed). */
static int step(struct slot *s, unsigned int events)
{
	ssize_t n;

	if (!s->sent) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return 0;
		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			finish(s, err == ECONNRESET ? E_RESET : E_CONNECT);
			return 1;
		}
		n = send(s->fd, request, sizeof(request) - 1, MSG_NOSIGNAL);
		if (n != (ssize_t)sizeof(request) - 1) {
			finish(s, E_RESET);
			return 1;
		}
		s->sent = 1;
	}
	for (;;) {
		char *p = s->buf + s->got;
		size_t room = sizeof(s->buf) - 1 - s->got;
		char sink[512];

		n = recv(s->fd, room ? p : sink, room ? room : sizeof(sink), 0);
		if (n > 0) {
			if (room)
				s->got += (size_t)n;
			continue;
		}
		if (n == 0) {
			finish(s, s->got ? -1 : E_SHORT);
			return 1;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		finish(s, E_RESET);
		return 1;
	}
}

int main(int argc, char **argv)
{
	struct epoll_event evs[256];
	struct slot *slots;
	long long t_start, t_end, t_stop;
	int conc, ep, i, inflight = 0;
	double secs;
	char *list, *tok;

	if (argc < 5) {
		fprintf(stderr, "usage: %s DST_IP PORT CONC SECONDS [SRC_IP,...]\n", argv[0]);
		return 2;
	}
	dst.sin_family = AF_INET;
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", argv[1]);
		return 2;
	}
	dst.sin_port = htons((unsigned short)atoi(argv[2]));
	conc = atoi(argv[3]);
	secs = atof(argv[4]);
	if (conc < 1 || secs <= 0) {
		fprintf(stderr, "CONC and SECONDS must be positive\n");
		return 2;
	}
	if (argc > 5) {
		list = argv[5];
		for (tok = strtok(list, ","); tok && nsrc < MAX_SRC; tok = strtok(NULL, ",")) {
			if (inet_pton(AF_INET, tok, &src[nsrc]) != 1) {
				fprintf(stderr, "bad source address %s\n", tok);
				return 2;
			}
			nsrc++;
		}
	}
	slots = calloc((size_t)conc, sizeof(*slots));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!slots || ep < 0) {
		perror("setup");
		return 1;
	}
	t_start = now_ns();
	t_stop = t_start + (long long)(secs * 1e9);
	for (i = 0; i < conc; i++)
		if (start(ep, &slots[i]) == 0)
			inflight++;
	while (inflight > 0) {
		long long t = now_ns();
		int n = epoll_wait(ep, evs, 256, 100);

		for (i = 0; i < n; i++) {
			struct slot *s = evs[i].data.ptr;

			if (step(s, evs[i].events)) {
				inflight--;
				if (now_ns() < t_stop && start(ep, s) == 0)
					inflight++;
			}
		}
		if (n == 0 || now_ns() - t > 100000000LL) {
			t = now_ns();
			for (i = 0; i < conc; i++) {
				if (slots[i].fd >= 0 && t - slots[i].t0 > CONN_TIMEOUT_NS) {
					finish(&slots[i], E_TIMEOUT);
					inflight--;
					if (t < t_stop && start(ep, &slots[i]) == 0)
						inflight++;
				}
			}
		}
		/* a failed start leaves the slot empty: retry while the run lasts */
		if (now_ns() < t_stop) {
			for (i = 0; i < conc; i++)
				if (slots[i].fd < 0 && start(ep, &slots[i]) == 0)
					inflight++;
		}
	}
	t_end = now_ns();
	qsort(lat, nlat, sizeof(*lat), cmp_uint);
	printf("{\"ok\":%llu,\"errors\":{", ok);
	for (i = 0; i < E_KINDS; i++)
		printf("%s\"%s\":%llu", i ? "," : "", err_name[i], errors[i]);
	printf("},\"seconds\":%.3f,\"cps\":%.1f,\"p50_us\":%u,\"p90_us\":%u,\"p99_us\":%u,\"max_us\":%u,\"backends\":{",
	       (double)(t_end - t_start) / 1e9, (double)ok * 1e9 / (double)(t_end - t_start),
	       percentile(0.50), percentile(0.90), percentile(0.99), nlat ? lat[nlat - 1] : 0);
	for (i = 0; i < nbackends; i++)
		printf("%s\"%s\":%llu", i ? "," : "", backend_name[i], backend_count[i]);
	printf("}}\n");
	return 0;
}
