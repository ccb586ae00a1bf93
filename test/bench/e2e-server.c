// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench:e2e real server: the cheapest honest HTTP/1.0 server. Accepts, reads the request (up to the blank
 * line), answers "200" with its NAME as the body and closes (server closes first, like a web server
 * answering Connection: close). One thread, epoll, non-blocking.
 *
 *   e2e-server NAME PORT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn {
	int fd;
	size_t got;
	char buf[1024];
};

static char response[256];
static int response_len;

static void done(struct conn *c)
{
	close(c->fd);
	free(c);
}

/* Reads what is there; answers and closes once the request's blank line arrived. */
static void serve(struct conn *c)
{
	for (;;) {
		size_t room = sizeof(c->buf) - 1 - c->got;
		ssize_t n = recv(c->fd, c->buf + c->got, room ? room : 1, 0);

		if (n > 0) {
			c->got += (size_t)n;
			c->buf[c->got] = 0;
			if (strstr(c->buf, "\r\n\r\n") || c->got >= sizeof(c->buf) - 1) {
				send(c->fd, response, (size_t)response_len, MSG_NOSIGNAL);
				done(c);
				return;
			}
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		done(c); /* EOF before a request, or an error */
		return;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct epoll_event ev, evs[256];
	int lfd, ep, one = 1, i;

	if (argc != 3) {
		fprintf(stderr, "usage: %s NAME PORT\n", argv[0]);
		return 2;
	}
	response_len = snprintf(response, sizeof(response),
				"HTTP/1.0 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
				strlen(argv[1]) + 1, argv[1]);
	a.sin_port = htons((unsigned short)atoi(argv[2]));
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4096) < 0) {
		perror("listen");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	printf("e2e-server %s listening on %s\n", argv[1], argv[2]);
	fflush(stdout);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr) {
				serve(evs[i].data.ptr);
				continue;
			}
			for (;;) {
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				struct conn *c;

				if (fd < 0)
					break;
				c = calloc(1, sizeof(*c));
				if (!c) {
					close(fd);
					continue;
				}
				c->fd = fd;
				ev.events = EPOLLIN;
				ev.data.ptr = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				serve(c); /* the request is often there already */
			}
		}
	}
}
