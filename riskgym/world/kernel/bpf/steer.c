// Steers a box's outside connections to its sinkhole (steer.bpf.c) and hands the link to riskgym's process.
//
// In the box's network namespace it makes every IPv4 address local (ip route add local 0.0.0.0/0 dev lo: a name
// the sinkhole's resolver answers is then reachable, and so is any address typed as digits), takes the sinkhole's
// listening socket from its process (pidfd_getfd), loads the program with that socket in its map, attaches it to
// the namespace, and sends the link's descriptor over a unix socket, then exits. The program stays attached while
// riskgym holds the link, or until the namespace goes (the box is removed).
//
// usage: riskgym-steer BOXPID SINKPID FD SOCKET (BOXPID: a process of the box, for its namespace; SINKPID and FD:
// the sinkhole's process and its listening socket's descriptor there; SOCKET: the descriptor to send the link on)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "handover.h"
#include "steer.skel.h"

static int quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, args) : 0;
}

static int fail(const char *what)
{
	fprintf(stderr, "ERROR: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: riskgym-steer BOXPID SINKPID FD SOCKET\n");
		return 2;
	}
	libbpf_set_print(quiet_libbpf);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%s/ns/net", argv[1]);
	int netns = open(path, O_RDONLY | O_CLOEXEC);
	if (netns < 0)
		return fail("the box's network namespace");
	int pidfd = syscall(SYS_pidfd_open, atoi(argv[2]), 0);
	if (pidfd < 0)
		return fail("the sinkhole's process");
	int listener = syscall(SYS_pidfd_getfd, pidfd, atoi(argv[3]), 0);
	if (listener < 0)
		return fail("the sinkhole's socket");
	pid_t child = fork();
	if (child == 0) {  // the route, from inside the namespace
		if (setns(netns, CLONE_NEWNET) != 0)
			_exit(fail("entering the box's network namespace"));
		execlp("ip", "ip", "route", "replace", "local", "0.0.0.0/0", "dev", "lo", (char *)0);
		_exit(fail("running ip (Debian's iproute2)"));
	}
	int status = 0;
	if (child < 0 || waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "ERROR: could not route the box's outside addresses to its loopback\n");
		return 1;
	}
	struct steer_bpf *skel = steer_bpf__open_and_load();
	if (!skel)
		return fail("loading the steering program");
	__u32 key = 0;
	__u64 value = listener;
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.sinkhole), &key, &value, BPF_ANY) != 0)
		return fail("giving the program the sinkhole's socket");
	struct bpf_link *link = bpf_program__attach_netns(skel->progs.steer, netns);
	if (!link)
		return fail("attaching the program to the box's network namespace");
	int fds[] = {bpf_link__fd(link)};
	if (!hand_over(atoi(argv[4]), 'S', fds, 1))
		return fail("handing the link over");
	return 0;
}
