// SPDX-License-Identifier: MIT
/*
 * keepvs LVS-TUN decapsulation, tc ingress on a real server's interface (`keepvs realserver --tun`).
 *
 * Stands in for the ipip module's tunl0 (and gre0 / a fou port) where the kernel has none: a packet
 * addressed to this host in IP-in-IP (protocol 4, IPv6 next header 41), GRE without options
 * (protocol 47) or GUE version 0 on a configured UDP port, whose inner destination is one of the
 * configured VIPs of the same family, loses its outer headers and continues up the stack as if it had arrived bare, so
 * the real server sees the client's address and answers it directly. Other tunnelled packets pass
 * untouched (the kernel drops them as it would without a tunnel device), so this is no open relay.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "tun_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct kv_vip_key);
	__type(value, __u32);
} kv_vips SEC(".maps");

/* UDP ports that carry GUE (tun_type gue, tun_port) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __be16);
	__type(value, __u32);
} kv_gue_ports SEC(".maps");

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
	__u32 ip_len;
	__u8 proto;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3fff)))
			return TC_ACT_OK;
		vip.family = KV_FAMILY_V4;
		proto = ip->protocol;
		ip_len = sizeof(*ip);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return TC_ACT_OK;
		vip.family = KV_FAMILY_V6;
		proto = ip6->nexthdr;
		ip_len = sizeof(*ip6);
	} else {
		return TC_ACT_OK;
	}
	__u8 want = vip.family == KV_FAMILY_V4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	void *l4 = (void *)(eth + 1) + ip_len;
	if (proto == want) {
		outer = ip_len;
	} else if (proto == IPPROTO_GRE) {
		struct kv_grehdr *gre = l4;
		if ((void *)(gre + 1) > end || gre->flags != 0 ||
		    gre->proto != bpf_htons(vip.family == KV_FAMILY_V4 ? ETH_P_IP : ETH_P_IPV6))
			return TC_ACT_OK;
		outer = ip_len + sizeof(*gre);
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > end || !bpf_map_lookup_elem(&kv_gue_ports, &uh->dest))
			return TC_ACT_OK;
		struct kv_guehdr *gue = (void *)(uh + 1);
		if ((void *)(gue + 1) > end || gue->hlen_ctrl != 0 || gue->proto_ctype != want)
			return TC_ACT_OK;
		outer = ip_len + sizeof(*uh) + sizeof(*gue);
	} else {
		return TC_ACT_OK;
	}
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	if (outer > 64 || data + sizeof(struct ethhdr) + outer + sizeof(struct iphdr) > end)
		return TC_ACT_OK;
	if (vip.family == KV_FAMILY_V4) {
		struct iphdr *inner = data + sizeof(struct ethhdr) + outer;
		if ((void *)(inner + 1) > end || inner->version != 4)
			return TC_ACT_OK;
		vip.addr[0] = inner->daddr;
	} else {
		struct ipv6hdr *inner = data + sizeof(struct ethhdr) + outer;
		if ((void *)(inner + 1) > end || inner->version != 6)
			return TC_ACT_OK;
		__builtin_memcpy(vip.addr, &inner->daddr, 16);
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
