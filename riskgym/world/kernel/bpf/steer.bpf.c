// The sinkhole's steering (riskgym/world/sinkhole): in one box's network namespace, every TCP connection to an
// address outside 127.0.0.0/8 (a name the sinkhole's resolver answered, or an address typed as digits) reaches the
// sinkhole's one listening socket, whatever its port. The box's own listeners and its world's services live on
// loopback addresses and are left alone. An sk_lookup program runs before the kernel looks for a listener, so one
// socket answers every port without a socket per port (as Cloudflare's "bind to any port" does).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sinkhole SEC(".maps");

SEC("sk_lookup")
int steer(struct bpf_sk_lookup *ctx)
{
	if (ctx->family != AF_INET || ctx->protocol != IPPROTO_TCP)
		return SK_PASS;
	if ((bpf_ntohl(ctx->local_ip4) >> 24) == 127)
		return SK_PASS;
	__u32 key = 0;
	struct bpf_sock *sk = bpf_map_lookup_elem(&sinkhole, &key);
	if (!sk)
		return SK_PASS;
	bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
