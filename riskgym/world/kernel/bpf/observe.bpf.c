// The host observer's kernel side: the box's system calls that matter, read on the raw_syscalls tracepoints and
// written to one ring buffer, which riskgym's own process reads (../observer.py; observe.c loads this).
//
// Every program runs for every call on the machine; each first asks whether the calling task's pid namespace is a
// watched box's (two loads, then a map lookup): the rest of the host costs that and nothing more. Records are
// submitted without waking the reader, which drains the buffer every few milliseconds; a buffer a quarter full wakes
// it at once (a sync mark from the host is read by the host right after it makes it).
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include "tables.h"

#define EPERM 1
#define TS_COMPAT 2

enum { K_F = 'F', K_E = 'E', K_P = 'P', K_A = 'A', K_H = 'H', K_X = 'X', K_Y = 'Y', K_N = 'N', K_Q = 'Q', K_C = 'C',
       K_S = 'S', K_R = 'R' };

struct ev {
	__u64 ts;
	__s64 v[7];
	__u32 ns, pid, tid, k;
	__u32 kind, len;
	char s[STRLEN];
};

struct pending {
	__u64 late[4];  // a path in a page not yet in memory: read when the call ends
	__u64 args[4];  // a call read by its numbers alone: written once, when it ends (an F record)
	__u64 pipe;     // pipe()'s array of two descriptors
	__u64 sock;     // a connect's or send's socket descriptor, plus one: its own port is read when the call ends
	__u8 plain;
};

const volatile __u32 owner = 0;  // the host process that may watch namespaces and mark syncs
const volatile __u32 level = 0;  // the depth of its own pid namespace

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, RING); } ring SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4096); __type(key, __u32); __type(value, __u8); }
	watched SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, __u32); __type(value, __u8); }
	quiet SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, __u32);
	 __type(value, struct pending); } pend SEC(".maps");
__u64 dropped = 0;  // records the ring buffer had no room for (and calls in flight the table had none for)

static __always_inline void count_lost(void)
{
	__sync_fetch_and_add(&dropped, 1);
}

static __always_inline void remember(__u32 tid, struct pending *p)
{
	if (bpf_map_update_elem(&pend, &tid, p, BPF_ANY))
		count_lost();
}

static __always_inline struct ev *reserve(__u32 kind, __u32 ns, __u32 pid, __u32 tid)
{
	struct ev *e = bpf_ringbuf_reserve(&ring, sizeof(struct ev), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	e->kind = kind;
	e->ns = ns;
	e->pid = pid;
	e->tid = tid;
	e->ts = bpf_ktime_get_ns();
	e->len = 0;
	e->k = 0;
	return e;
}

static __always_inline void submit(struct ev *e, int now)
{
	__u64 flags = BPF_RB_NO_WAKEUP;
	if (now || bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA) > RING / 4)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

static __always_inline __u32 box_of(struct task_struct *t)
{
	if (BPF_CORE_READ(t, thread_pid, level) <= level)
		return 0;
	__u32 ns = BPF_CORE_READ(t, nsproxy, pid_ns_for_children, ns.inum);
	return bpf_map_lookup_elem(&watched, &ns) ? ns : 0;
}

static __always_inline void numbers(struct task_struct *t, __s64 *nspid, __s64 *lv)
{
	struct pid *g = BPF_CORE_READ(t, group_leader, thread_pid);
	unsigned int l = BPF_CORE_READ(g, level);
	int nr = 0;
	bpf_core_read(&nr, sizeof(nr), &g->numbers[l].nr);
	*nspid = nr;
	*lv = l;
}

// a string of the agent's memory: 0 when its page is not in memory yet
static __always_inline int string(__u32 ns, __u32 pid, __u32 tid, __u32 k, __u64 ptr)
{
	struct ev *e = reserve(K_P, ns, pid, tid);
	if (!e)
		return 1;
	e->k = k;
	long n = ptr ? bpf_probe_read_user_str(e->s, STRLEN, (void *)ptr) : 0;
	if (n < 0) {
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		return 0;
	}
	e->len = n > 0 ? n - 1 : 0;
	submit(e, 0);
	return 1;
}

static __always_inline void address(__u32 ns, __u32 pid, __u32 tid, __u64 ptr)
{
	__u16 family = 0;
	if (!ptr || bpf_probe_read_user(&family, sizeof(family), (void *)ptr) || (family != 2 && family != 10))
		return;
	struct ev *e = reserve(K_A, ns, pid, tid);
	if (!e)
		return;
	e->v[0] = family;
	if (bpf_probe_read_user(e->s, family == 2 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6),
				(void *)ptr)) {
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		return;
	}
	e->len = family == 2 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	submit(e, 0);
}

// the local port of a socket descriptor of the calling task (0: none): where the sinkhole saw the attempt come from
static __always_inline __s64 local_port(struct task_struct *t, __u64 fd)
{
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	return sock ? BPF_CORE_READ(sock, sk, __sk_common.skc_num) : 0;
}

static __always_inline void control(struct trace_event_raw_sys_enter *ctx)
{
	__u64 what = ctx->args[1], value = ctx->args[2];
	__u32 key = value;
	__u8 one = 1, two = 2;
	struct ev *e;
	if (what == WATCH) {
		bpf_map_update_elem(&watched, &key, &one, BPF_ANY);
		if ((e = reserve(K_R, key, 0, 0)))
			submit(e, 1);
	} else if (what == UNWATCH) {
		bpf_map_delete_elem(&watched, &key);
	} else if (what == QUIET) {
		bpf_map_update_elem(&quiet, &key, &one, BPF_ANY);
	} else if (what == QUIET_TREE) {
		bpf_map_update_elem(&quiet, &key, &two, BPF_ANY);
	} else if (what == SYNC && (e = reserve(K_S, 0, 0, 0))) {
		e->v[0] = value;
		submit(e, 1);
	}
}

SEC("tracepoint/raw_syscalls/sys_enter")
int enter(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	__u64 pt = bpf_get_current_pid_tgid();
	__u32 pid = pt >> 32, tid = pt;
	long id = ctx->id;
	if (pid == owner && id == 157 && ctx->args[0] == MAGIC) {
		control(ctx);
		return 0;
	}
	__u32 ns = box_of(t);
	if (!ns || bpf_map_lookup_elem(&quiet, &pid))
		return 0;
	struct ev *e;
	if ((BPF_CORE_READ(t, thread_info.status) & TS_COMPAT) || id >= 0x40000000) {
		if ((e = reserve(K_C, ns, pid, tid))) {
			e->v[0] = id;
			submit(e, 0);
		}
		return 0;
	}
	if (id < 0 || id >= NCALLS)
		return 0;
	// the arguments as values: the verifier refuses a context read at a computed offset
	__u64 a0 = ctx->args[0], a1 = ctx->args[1], a2 = ctx->args[2], a3 = ctx->args[3], a4 = ctx->args[4];
	barrier_var(a0);
	barrier_var(a1);
	barrier_var(a2);
	barrier_var(a3);
	barrier_var(a4);
	__u16 what = CALLS[id];
	if (!what)
		return 0;
	struct pending p = {};
	if (id == 72 && a1 != 0 && a1 != 1030)  // fcntl: only what copies a descriptor
		return 0;
	if (id == 47 || id == 299) {  // a receive, only when it asks for ancillary data
		struct user_msghdr *m = (void *)a1;
		__u64 control_len = 0;
		bpf_probe_read_user(&control_len, sizeof(control_len), &m->msg_controllen);
		if (!control_len)
			return 0;
	}
	if (id == 22 || id == 293)
		p.pipe = a0;
	if (what & PLAIN) {  // no strings: one record when the call ends
		p.plain = 1;
		p.args[0] = a0;
		p.args[1] = a1;
		p.args[2] = a2;
		p.args[3] = a3;
		remember(tid, &p);
		return 0;
	}
	if (!(e = reserve(K_E, ns, pid, tid)))
		return 0;
	numbers(t, &e->v[4], &e->v[5]);
	e->k = id;
	e->v[0] = a0;
	e->v[1] = a1;
	e->v[2] = a2;
	e->v[3] = a3;
	submit(e, 0);
	if (what & ARGV) {
		__u64 f = id == 59 ? a0 : a1, av = id == 59 ? a1 : a2;
		string(ns, pid, tid, id == 59 ? 0 : 1, f);
		int more = 1;
		for (int i = 0; i < ARGS_SHOWN && more; i++) {
			__u64 a = 0;
			bpf_probe_read_user(&a, sizeof(a), (void *)(av + 8 * i));
			if (!a)
				more = 0;
			else
				string(ns, pid, tid, 16 + i, a);
		}
		__u64 a = 0;
		if (more && !bpf_probe_read_user(&a, sizeof(a), (void *)(av + 8 * ARGS_SHOWN)) && a)
			string(ns, pid, tid, 15, 0);
	} else {
		if ((what & 1) && !string(ns, pid, tid, 0, a0))
			p.late[0] = a0;
		if ((what & 2) && !string(ns, pid, tid, 1, a1))
			p.late[1] = a1;
		if ((what & 4) && !string(ns, pid, tid, 2, a2))
			p.late[2] = a2;
		if ((what & 8) && !string(ns, pid, tid, 3, a3))
			p.late[3] = a3;
	}
	if (what & ADDRESS) {
		__u64 ptr = id == 44 ? a4 : a1;
		if (id == 46 || id == 307) {
			struct user_msghdr *m = (void *)a1;
			ptr = 0;
			bpf_probe_read_user(&ptr, sizeof(ptr), &m->msg_name);
		}
		address(ns, pid, tid, ptr);
		if (id != 49)
			p.sock = a0 + 1;
	}
	if (id == 437 && (e = reserve(K_H, ns, pid, tid))) {
		__u64 flags = 0;
		bpf_probe_read_user(&flags, sizeof(flags), (void *)a2);
		e->v[0] = flags;
		submit(e, 0);
	}
	if (p.late[0] || p.late[1] || p.late[2] || p.late[3] || p.sock)
		remember(tid, &p);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int leave(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	__u64 pt = bpf_get_current_pid_tgid();
	__u32 pid = pt >> 32, tid = pt;
	long id = ctx->id, ret = ctx->ret;  // (values: the verifier refuses a context read at a computed offset)
	barrier_var(ret);
	__u32 ns = box_of(t);
	if (!ns || id < 0 || id >= NCALLS || !CALLS[id] || bpf_map_lookup_elem(&quiet, &pid))
		return 0;
	if (BPF_CORE_READ(t, thread_info.status) & TS_COMPAT)
		return 0;
	struct pending *p = bpf_map_lookup_elem(&pend, &tid);
	struct ev *e;
	if (CALLS[id] & PLAIN) {  // its whole record (not there: the child's return from a fork, or a call not read)
		int refused = !(p && p->plain) && (CALLS[id] & REFUSED) && ret == -EPERM;
		if (!(p && p->plain) && !refused)
			return 0;
		if (!(e = reserve(K_F, ns, pid, tid)))
			return 0;
		numbers(t, &e->v[4], &e->v[5]);
		e->k = id;
		if (refused) {  // the box's profile refused it before it began: its arguments are in its registers
			struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
			e->v[0] = BPF_CORE_READ(regs, di);
			e->v[1] = BPF_CORE_READ(regs, si);
			e->v[2] = BPF_CORE_READ(regs, dx);
			e->v[3] = BPF_CORE_READ(regs, r10);
		} else {
			e->v[0] = p->args[0];
			e->v[1] = p->args[1];
			e->v[2] = p->args[2];
			e->v[3] = p->args[3];
		}
		e->v[6] = ret;
		submit(e, 0);
	} else {
		if (!(e = reserve(K_X, ns, pid, tid)))
			return 0;
		e->k = id;
		e->v[0] = ret;
		// a socket that connected or sent (or is connecting) has its own port now
		e->v[1] = p && p->sock && (ret >= 0 || ret == -115) ? local_port(t, p->sock - 1) : 0;
		submit(e, 0);
	}
	if (!p)
		return 0;
	if (p->pipe && ret == 0 && (e = reserve(K_Y, ns, pid, tid))) {
		int fds[2] = {};
		bpf_probe_read_user(fds, sizeof(fds), (void *)p->pipe);
		e->v[0] = fds[0];
		e->v[1] = fds[1];
		submit(e, 0);
	}
	for (int k = 0; k < 4; k++)
		if (p->late[k] && !string(ns, pid, tid, k, p->late[k]) && (e = reserve(K_P, ns, pid, tid))) {
			e->k = k;  // still unreadable: an empty string, as a path that could not be read
			submit(e, 0);
		}
	bpf_map_delete_elem(&pend, &tid);
	return 0;
}

SEC("tracepoint/task/task_newtask")
int newtask(struct trace_event_raw_task_newtask *ctx)
{
	__u64 pt = bpf_get_current_pid_tgid();
	__u32 pid = pt >> 32, tid = pt, child = ctx->pid;
	__u8 *q = bpf_map_lookup_elem(&quiet, &pid);
	if (q && *q == 2)  // a quiet tree stays quiet
		bpf_map_update_elem(&quiet, &child, q, BPF_ANY);
	struct task_struct *t = (void *)bpf_get_current_task();
	__u32 ns = box_of(t);
	struct ev *e;
	if (!ns || !(e = reserve(K_N, ns, pid, tid)))
		return 0;
	numbers(t, &e->v[4], &e->v[5]);
	e->v[0] = child;
	e->v[1] = ctx->clone_flags;
	submit(e, 0);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int process_exit(void *ctx)
{
	__u64 pt = bpf_get_current_pid_tgid();
	__u32 pid = pt >> 32, tid = pt;
	struct task_struct *t = (void *)bpf_get_current_task();
	__u32 ns = box_of(t);
	struct ev *e;
	if (ns && pid == tid && (e = reserve(K_Q, ns, pid, tid)))
		submit(e, 0);
	// every task's end, watched or not: nothing of it stays for a later task that gets its number
	bpf_map_delete_elem(&quiet, &tid);
	bpf_map_delete_elem(&pend, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
