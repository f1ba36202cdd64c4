// SPDX-License-Identifier: MIT
/*
 * keepvs LVS-TUN decapsulation, tc ingress on a real server's interface (`keepvs realserver --tun`).
 *
 * Stands in for the ipip module's tunl0 where the kernel has none: an IPv4-in-IPv4 (protocol 4) or
 * IPv6-in-IPv6 (next header 41) packet addressed to this host whose inner destination is one of the
 * configured VIPs loses its outer header and continues up the stack as if it had arrived bare, so
 * the real server sees the client's address and answers it directly. Other tunnelled packets pass
 * untouched (the kernel drops them as it would without a tunnel device), so this is no open relay.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "tun_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct kv_vip_key);
	__type(value, __u32);
} kv_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KV_ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} kv_stats SEC(".maps");

#define PACKET_HOST 0

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&kv_stats, &idx);
	if (v)
		*v += 1;
}

SEC("tc")
int kv_tun_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || skb->pkt_type != PACKET_HOST)
		return TC_ACT_OK;

	struct kv_vip_key vip = {};
	__u32 outer;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_IPIP || ip->ihl != 5)
			return TC_ACT_OK;
		struct iphdr *inner = (void *)(ip + 1);
		if ((void *)(inner + 1) > end || inner->version != 4)
			return TC_ACT_OK;
		vip.family = KV_FAMILY_V4;
		vip.addr[0] = inner->daddr;
		outer = sizeof(*ip);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_IPV6)
			return TC_ACT_OK;
		struct ipv6hdr *inner = (void *)(ip6 + 1);
		if ((void *)(inner + 1) > end || inner->version != 6)
			return TC_ACT_OK;
		vip.family = KV_FAMILY_V6;
		__builtin_memcpy(vip.addr, &inner->daddr, 16);
		outer = sizeof(*ip6);
	} else {
		return TC_ACT_OK;
	}
	if (!bpf_map_lookup_elem(&kv_vips, &vip)) {
		count(KV_ST_NOT_VIP);
		return TC_ACT_OK;
	}
	if (bpf_skb_adjust_room(skb, -(__s32)outer, BPF_ADJ_ROOM_MAC, 0)) {
		count(KV_ST_ERROR);
		return TC_ACT_SHOT;
	}
	count(KV_ST_DECAP);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
