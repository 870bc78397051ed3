/*
 * relay.c: the least work a userspace VXLAN relay can do per frame, the
 * yardstick for latency of `vxswitch lab bench --floor`, which builds it
 * with gcc (it is embedded in the bench). It is written in C so that
 * nothing but the kernel's own costs (system calls, wake-ups, copies) is in
 * the figure. It has two designs:
 *
 *   threads  one thread per direction blocks in read(2) or recv(2) and
 *            passes each frame on with one write(2) or send(2);
 *   epoll    one thread waits in epoll_wait(2) for both, then drains both
 *            until neither has anything, as vxswitch's agent does: an
 *            answer that arrives while the thread is busy costs no wake-up.
 *
 * Usage, inside a host's network namespace:
 *   relay TAP LOCAL-IPV4 PEER-IPV4 PORT VNI [threads|epoll]
 * creates TAP (configure it with ip(8) afterwards), binds LOCAL:PORT and
 * exchanges RFC 7348 VXLAN datagrams with PEER:PORT. It prints "ready".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

enum { HDR = 8, BUF = 65536 };

static int tap, sock;
static unsigned long vni;
static unsigned char out[BUF], in[BUF]; /* to the peer, from the peer */

/* tap_to_peer reads one frame from the TAP and sends it in one datagram. */
static ssize_t tap_to_peer(void) {
	ssize_t n = read(tap, out + HDR, sizeof out - HDR);
	if (n < 0)
		return n;
	out[0] = 0x08; /* I flag: the VNI is valid */
	out[4] = vni >> 16;
	out[5] = vni >> 8;
	out[6] = vni;
	send(sock, out, HDR + n, 0);
	return n;
}

/*
 * peer_to_tap receives one datagram and writes its frame to the TAP if it
 * carries our VNI. An ICMP port unreachable from a peer that is not up yet
 * fails one recv on a connected socket (ECONNREFUSED); that is not an error
 * of the relay, and counts as a datagram.
 */
static ssize_t peer_to_tap(void) {
	ssize_t n = recv(sock, in, sizeof in, 0);
	if (n < 0 && errno == ECONNREFUSED)
		return 0;
	unsigned long v = (unsigned long)in[4] << 16 | in[5] << 8 | in[6];
	if (n > HDR && in[0] == 0x08 && v == vni)
		write(tap, in + HDR, n - HDR);
	return n;
}

static void *to_peer(void *unused) {
	(void)unused;
	for (;;)
		if (tap_to_peer() < 0) {
			perror("relay: read TAP");
			exit(1);
		}
	return NULL;
}

/* run_threads is the threads design: both file descriptors block. */
static void run_threads(void) {
	pthread_t t;
	if (pthread_create(&t, NULL, to_peer, NULL) != 0) {
		fprintf(stderr, "relay: cannot start a thread\n");
		exit(1);
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		if (peer_to_tap() < 0) {
			perror("relay: recv");
			exit(1);
		}
}

/* run_epoll is the epoll design: both file descriptors are non-blocking. */
static void run_epoll(void) {
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
	fcntl(tap, F_SETFL, O_NONBLOCK);
	fcntl(sock, F_SETFL, O_NONBLOCK);
	ev.data.fd = tap;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, tap, &ev) < 0) {
		perror("relay: epoll");
		exit(1);
	}
	ev.data.fd = sock;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sock, &ev) < 0) {
		perror("relay: epoll");
		exit(1);
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct epoll_event got[2];
		if (epoll_wait(ep, got, 2, -1) < 0 && errno != EINTR) {
			perror("relay: epoll_wait");
			exit(1);
		}
		/* Edge-triggered: drain both until both say EAGAIN. */
		for (int busy = 1; busy;) {
			busy = 0;
			if (tap_to_peer() >= 0)
				busy = 1;
			else if (errno != EAGAIN) {
				perror("relay: read TAP");
				exit(1);
			}
			if (peer_to_tap() >= 0)
				busy = 1;
			else if (errno != EAGAIN) {
				perror("relay: recv");
				exit(1);
			}
		}
	}
}

int main(int argc, char **argv) {
	int epoll = argc == 7 && strcmp(argv[6], "epoll") == 0;
	if ((argc != 6 && argc != 7) || (argc == 7 && !epoll && strcmp(argv[6], "threads") != 0)) {
		fprintf(stderr, "usage: relay TAP LOCAL-IPV4 PEER-IPV4 PORT VNI [threads|epoll]\n");
		return 2;
	}
	vni = strtoul(argv[5], NULL, 10);
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
	strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
	tap = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (tap < 0 || ioctl(tap, TUNSETIFF, &ifr) < 0) {
		perror("relay: create TAP");
		return 1;
	}
	struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[4]))};
	struct sockaddr_in peer = local;
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0 || inet_pton(AF_INET, argv[2], &local.sin_addr) != 1 ||
	    inet_pton(AF_INET, argv[3], &peer.sin_addr) != 1 ||
	    bind(sock, (struct sockaddr *)&local, sizeof local) < 0 ||
	    connect(sock, (struct sockaddr *)&peer, sizeof peer) < 0) {
		perror("relay: UDP socket");
		return 1;
	}
	if (epoll)
		run_epoll();
	run_threads();
	return 0;
}
