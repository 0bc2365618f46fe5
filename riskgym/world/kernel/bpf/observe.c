// The host observer's reader of the kernel's records: loads observe.bpf.c's programs, then writes one line per
// record to its stdout (the lines ../script.py describes), flushed after each drain of the ring buffer.
//
// usage: riskgym-observe OWNER LEVEL (OWNER: the host process that may steer it; LEVEL: its pid namespace's depth)
// Text an agent chose (a path, an argument) is written with backslash, control bytes and DEL as \xHH, so that no
// line or field can be forged; other bytes are written as they are.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "observe.skel.h"
#include "tables.h"


struct ev {
	unsigned long long ts;
	long long v[7];
	unsigned int ns, pid, tid, k;
	unsigned int kind, len;
	char s[STRLEN];
};

static void text(const char *s, unsigned int len)
{
	for (unsigned int i = 0; i < len && i < STRLEN; i++) {
		unsigned char c = s[i];
		if (c < 0x20 || c == 0x7f || c == '\\')
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static int line(void *ctx, void *data, size_t size)
{
	const struct ev *e = data;
	char addr[INET6_ADDRSTRLEN] = "";
	(void)ctx;
	if (size < sizeof(*e) - STRLEN)
		return 0;
	switch (e->kind) {
	case 'F':
		printf("F\t%llu\t%u\t%u\t%u\t%lld\t%lld\t%u\t%lld\t%lld\t%lld\t%lld\t%lld\n", e->ts, e->ns, e->pid,
		       e->tid, e->v[4], e->v[5], e->k, e->v[0], e->v[1], e->v[2], e->v[3], e->v[6]);
		break;
	case 'E':
		printf("E\t%llu\t%u\t%u\t%u\t%lld\t%lld\t%u\t%lld\t%lld\t%lld\t%lld\n", e->ts, e->ns, e->pid, e->tid,
		       e->v[4], e->v[5], e->k, e->v[0], e->v[1], e->v[2], e->v[3]);
		break;
	case 'P':
		printf("P\t%u\t%u\t%u\t", e->ns, e->tid, e->k);
		text(e->s, e->len);
		putchar('\n');
		break;
	case 'A': {
		const struct sockaddr_in *a4 = (const void *)e->s;
		const struct sockaddr_in6 *a6 = (const void *)e->s;
		if (e->v[0] == AF_INET)
			inet_ntop(AF_INET, &a4->sin_addr, addr, sizeof(addr));
		else
			inet_ntop(AF_INET6, &a6->sin6_addr, addr, sizeof(addr));
		printf("A\t%u\t%u\t%lld\t%u\t%s\n", e->ns, e->tid, e->v[0],
		       ntohs(e->v[0] == AF_INET ? a4->sin_port : a6->sin6_port), addr);
		break;
	}
	case 'H':
		printf("H\t%u\t%u\t%llu\n", e->ns, e->tid, (unsigned long long)e->v[0]);
		break;
	case 'X':
		printf("X\t%llu\t%u\t%u\t%u\t%lld\n", e->ts, e->ns, e->tid, e->k, e->v[0]);
		break;
	case 'Y':
		printf("Y\t%u\t%u\t%lld\t%lld\n", e->ns, e->tid, e->v[0], e->v[1]);
		break;
	case 'N':
		printf("N\t%llu\t%u\t%u\t%u\t%lld\t%llu\t%lld\t%lld\n", e->ts, e->ns, e->pid, e->tid, e->v[0],
		       (unsigned long long)e->v[1], e->v[5], e->v[4]);
		break;
	case 'Q':
		printf("Q\t%llu\t%u\t%u\n", e->ts, e->ns, e->pid);
		break;
	case 'C':
		printf("C\t%llu\t%u\t%u\t%u\t%lld\n", e->ts, e->ns, e->pid, e->tid, e->v[0]);
		break;
	case 'S':
		printf("S\t%llu\t%lld\n", e->ts, e->v[0]);
		break;
	case 'R':
		printf("R\t%u\n", e->ns);
		break;
	}
	return 0;
}

static int quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, args) : 0;
}

int main(int argc, char **argv)
{
	static char out[1 << 20];
	if (argc != 3) {
		fprintf(stderr, "usage: riskgym-observe OWNER LEVEL\n");
		return 2;
	}
	setvbuf(stdout, out, _IOFBF, sizeof(out));
	signal(SIGPIPE, SIG_DFL);
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
	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(skel->maps.ring), line, 0, 0);
	if (!rb) {
		fprintf(stderr, "ERROR: could not open the ring buffer: %s\n", strerror(errno));
		return 1;
	}
	int ncpu = libbpf_num_possible_cpus();
	unsigned long long *per = calloc(ncpu > 0 ? ncpu : 1, sizeof(*per)), reported = 0;
	printf("B\n");
	fflush(stdout);
	for (;;) {
		int n = ring_buffer__poll(rb, 5);  // records that did not wake it are drained at the next tick
		int m = n < 0 && n != -EINTR ? n : ring_buffer__consume(rb);
		if (m < 0 && m != -EINTR) {
			fprintf(stderr, "ERROR: reading the ring buffer: %s\n", strerror(-m));
			return 1;
		}
		n = n > 0 || m > 0;
		unsigned int zero = 0;
		unsigned long long total = 0;
		if (per && !bpf_map_lookup_elem(bpf_map__fd(skel->maps.lost), &zero, per))
			for (int i = 0; i < ncpu; i++)
				total += per[i];
		if (total > reported) {
			printf("L\t%llu\n", total - reported);
			reported = total;
			n = 1;
		}
		if (n > 0)
			fflush(stdout);
		if (ferror(stdout))
			return 1;
	}
}
