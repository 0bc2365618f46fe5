// Loads the host observer's kernel side (observe.bpf.c) and hands it to riskgym's process: builds the programs for
// this kernel, attaches them, and sends over a unix socket the ring buffer's descriptor, the counter of dropped
// records' (.bss) and the programs' links, then exits. riskgym holds them from then on: the programs stay attached
// as long as it runs, and the kernel detaches them when it ends, however it ends.
//
// usage: riskgym-observe OWNER LEVEL SOCKET (OWNER: the host process that may steer the programs; LEVEL: the depth
// of its pid namespace; SOCKET: the descriptor of a unix socket to send the descriptors over)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <bpf/libbpf.h>
#include "handover.h"
#include "observe.skel.h"

static int quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, args) : 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: riskgym-observe OWNER LEVEL SOCKET\n");
		return 2;
	}
	libbpf_set_print(quiet_libbpf);
	struct observe_bpf *skel = observe_bpf__open();
	if (!skel) {
		fprintf(stderr, "ERROR: could not open the BPF object: %s\n", strerror(errno));
		return 1;
	}
	skel->rodata->owner = strtoul(argv[1], 0, 10);
	skel->rodata->level = strtoul(argv[2], 0, 10);
	int err = observe_bpf__load(skel);
	if (!err)
		err = observe_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "ERROR: could not load or attach the BPF programs: %s\n", strerror(-err));
		return 1;
	}
	int fds[] = {bpf_map__fd(skel->maps.ring), bpf_map__fd(skel->maps.bss), bpf_link__fd(skel->links.enter),
		     bpf_link__fd(skel->links.leave), bpf_link__fd(skel->links.newtask),
		     bpf_link__fd(skel->links.process_exit)};
	if (!hand_over(atoi(argv[3]), 'B', fds, sizeof(fds) / sizeof(fds[0]))) {
		fprintf(stderr, "ERROR: could not hand the programs over: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
