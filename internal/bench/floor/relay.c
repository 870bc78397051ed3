/*
 * relay.c: the least work a userspace VXLAN relay can do per frame, as the
 * yardstick for ping latency that floor.sh measures. One thread per
 * direction blocks in read(2) or recv(2) and passes each frame on with one
 * write(2) or send(2): no poller, no batching, no runtime between the
 * system calls. It is written in C so that nothing but the kernel's own
 * costs (system calls, wake-ups, copies) is in the figure.
 *
 * Usage, inside a host's network namespace:
 *   relay TAP LOCAL-IPV4 PEER-IPV4 PORT VNI
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
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

enum { HDR = 8, BUF = 65536 };

static int tap, sock;
static unsigned long vni;

/* to_peer sends every frame the TAP hands over in one datagram. */
static void *to_peer(void *unused) {
	static unsigned char b[BUF];
	(void)unused;
	b[0] = 0x08; /* I flag: the VNI is valid */
	b[4] = vni >> 16;
	b[5] = vni >> 8;
	b[6] = vni;
	for (;;) {
		ssize_t n = read(tap, b + HDR, sizeof b - HDR);
		if (n < 0) {
			perror("relay: read TAP");
			exit(1);
		}
		send(sock, b, HDR + n, 0);
	}
	return NULL;
}

/*
 * from_peer writes the frame of every datagram with our VNI to the TAP. An
 * ICMP port unreachable from a peer that is not up yet fails one recv on a
 * connected socket (ECONNREFUSED); that is not an error of the relay.
 */
static void from_peer(void) {
	static unsigned char b[BUF];
	for (;;) {
		ssize_t n = recv(sock, b, sizeof b, 0);
		if (n < 0 && errno == ECONNREFUSED)
			continue;
		if (n < 0) {
			perror("relay: recv");
			exit(1);
		}
		unsigned long v = (unsigned long)b[4] << 16 | b[5] << 8 | b[6];
		if (n > HDR && b[0] == 0x08 && v == vni)
			write(tap, b + HDR, n - HDR);
	}
}

int main(int argc, char **argv) {
	if (argc != 6) {
		fprintf(stderr, "usage: relay TAP LOCAL-IPV4 PEER-IPV4 PORT VNI\n");
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
	pthread_t t;
	if (pthread_create(&t, NULL, to_peer, NULL) != 0) {
		fprintf(stderr, "relay: cannot start a thread\n");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	from_peer();
	return 0;
}
