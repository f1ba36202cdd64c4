// SPDX-License-Identifier: MIT
/*
 * keepvs LVS-TUN encapsulation, tc ingress on the director's VIP interface.
 *
 * A packet to a TUN virtual service (address, protocol, port) is hashed on the fields its scheduler
 * uses into the service's slot table, gets an outer IP header towards the chosen real server and is
 * redirected out of the interface that reaches it. Everything else passes untouched.
 *
 * Wire format as IPVS's ip_vs_tunnel_xmit / ip_vs_tunnel_xmit_v6 (ip_vs_xmit.c,
 * ip_vs_prepare_tunneled_skb): tun_type ipip is IPv4 in IPv4 (protocol 4, inner TOS, TTL and DF
 * copied) or IPv6 in IPv6 (next header 41, traffic class and hop limit copied); tun_type gue adds
 * UDP to tun_port and a 4-byte GUE header (ipvs_gue_encap, no checksum); tun_type gre a 4-byte
 * GRE header (ipvs_gre_encap, no checksum).
 * The kernel here has no ipip module, so the header is built by bpf_skb_adjust_room + store_bytes.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "tun_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct kv_svc_key);
	__type(value, struct kv_svc_val);
} kv_services SEC(".maps");

/* Slot tables of every service, two regions each (active + the one being rewritten). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 20);
	__type(key, __u32);
	__type(value, struct kv_slot);
} kv_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct kv_real);
} kv_reals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct kv_real_stats);
} kv_real_stats SEC(".maps");

/* Flows seen, least recently used evicted first; a SYN always reschedules. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct kv_flow_key);
	__type(value, struct kv_flow_val);
} kv_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KV_ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} kv_stats SEC(".maps");

#define IP_DF 0x4000
#define IP_MF_OFFSET 0x3fff

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&kv_stats, &idx);
	if (v)
		*v += 1;
}

/* Flow hash (murmur3 rounds); mirrored by flowHash() in src/dataplane/tun/hash.ts. */
static __always_inline __u32 mix(__u32 h, __u32 v)
{
	v *= 0xcc9e2d51;
	v = (v << 15) | (v >> 17);
	v *= 0x1b873593;
	h ^= v;
	h = (h << 13) | (h >> 19);
	return h * 5 + 0xe6546b64;
}

static __always_inline __u32 fmix(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

static __always_inline __u32 prefix_mask(__u32 prefix, int word)
{
	int bits = (int)prefix - word * 32;
	if (bits >= 32)
		return 0xffffffff;
	if (bits <= 0)
		return 0;
	/* network order: the first `bits` bits of the word as it sits in memory */
	return bpf_htonl(~((1u << (32 - bits)) - 1));
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

struct flow {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 syn;
	__u8 family;
	__u8 df;
	__u8 tos;
	__u8 ttl;
	__u16 inner_len; /* inner IP packet length (IPv4 tot_len, IPv6 40 + payload_len) */
};

static __always_inline int parse_l4(struct __sk_buff *skb, __u32 off, struct flow *f, int fragment)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	if (f->proto == IPPROTO_TCP) {
		if (fragment)
			return 0;
		struct tcphdr *th = data + off;
		if ((void *)(th + 1) > end)
			return -1;
		f->sport = th->source;
		f->dport = th->dest;
		f->syn = th->syn && !th->ack;
		return 0;
	}
	if (f->proto == IPPROTO_UDP) {
		if (fragment)
			return 0;
		struct udphdr *uh = data + off;
		if ((void *)(uh + 1) > end)
			return -1;
		f->sport = uh->source;
		f->dport = uh->dest;
		return 0;
	}
	return -1;
}

static __always_inline int parse(struct __sk_buff *skb, struct flow *f)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return -1;
		f->family = KV_FAMILY_V4;
		f->proto = ip->protocol;
		f->saddr[0] = ip->saddr;
		f->daddr[0] = ip->daddr;
		f->df = (ip->frag_off & bpf_htons(IP_DF)) != 0;
		f->tos = ip->tos;
		f->ttl = ip->ttl;
		f->inner_len = bpf_ntohs(ip->tot_len);
		/* fragments hash without ports, so every piece of a datagram follows the first */
		int fragment = (ip->frag_off & bpf_htons(IP_MF_OFFSET)) != 0;
		return parse_l4(skb, sizeof(*eth) + ip->ihl * 4, f, fragment);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return -1;
		f->family = KV_FAMILY_V6;
		f->proto = ip6->nexthdr; /* extension headers are not followed: such packets pass */
		__builtin_memcpy(f->saddr, &ip6->saddr, 16);
		__builtin_memcpy(f->daddr, &ip6->daddr, 16);
		f->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
		f->ttl = ip6->hop_limit;
		f->inner_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
		return parse_l4(skb, sizeof(*eth) + sizeof(*ip6), f, 0);
	}
	return -1;
}

static __always_inline __u32 flow_hash(const struct flow *f, const struct kv_svc_val *svc)
{
	__u32 h = 0;
	int words = f->family == KV_FAMILY_V4 ? 1 : 4;
	if (svc->flags & KV_HASH_SADDR) {
#pragma unroll
		for (int i = 0; i < 4; i++)
			if (i < words)
				h = mix(h, f->saddr[i] & prefix_mask(svc->prefix, i));
	}
	if (svc->flags & KV_HASH_SPORT)
		h = mix(h, f->sport);
	if (svc->flags & KV_HASH_DADDR) {
#pragma unroll
		for (int i = 0; i < 4; i++)
			if (i < words)
				h = mix(h, f->daddr[i]);
	}
	return fmix(h);
}

/* Bytes of outer header for a real server: IP, plus UDP + GUE or GRE. */
static __always_inline __u32 outer_len(const struct kv_real *r)
{
	__u32 ip = r->family == KV_FAMILY_V4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	if (r->encap == KV_ENCAP_GUE)
		return ip + sizeof(struct udphdr) + sizeof(struct kv_guehdr);
	if (r->encap == KV_ENCAP_GRE)
		return ip + sizeof(struct kv_grehdr);
	return ip;
}

/* The L4 part after the outer IP header: UDP + GUE (checksum 0: tun_flags nocsum) or GRE. */
static __always_inline int store_l4(struct __sk_buff *skb, __u32 off, const struct flow *f, const struct kv_real *r,
				    __u32 hash, __u32 l4len)
{
	__u8 inner = f->family == KV_FAMILY_V4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	if (r->encap == KV_ENCAP_GUE) {
		struct {
			struct udphdr udp;
			struct kv_guehdr gue;
		} h = {};
		/* a per-flow source port spreads tunnels over receive queues (udp_flow_src_port) */
		h.udp.source = bpf_htons(49152 + (hash >> 18));
		h.udp.dest = r->port;
		h.udp.len = bpf_htons(l4len);
		h.gue.proto_ctype = inner;
		return bpf_skb_store_bytes(skb, off, &h, sizeof(h), 0);
	}
	if (r->encap == KV_ENCAP_GRE) {
		struct kv_grehdr h = { .flags = 0, .proto = bpf_htons(f->family == KV_FAMILY_V4 ? ETH_P_IP : ETH_P_IPV6) };
		return bpf_skb_store_bytes(skb, off, &h, sizeof(h), 0);
	}
	return 0;
}

static __always_inline __u64 room_flags(const struct kv_real *r)
{
	__u64 fl = r->family == KV_FAMILY_V4 ? BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 : BPF_F_ADJ_ROOM_ENCAP_L3_IPV6;
	if (r->encap == KV_ENCAP_GUE)
		fl |= BPF_F_ADJ_ROOM_ENCAP_L4_UDP;
	else if (r->encap == KV_ENCAP_GRE)
		fl |= BPF_F_ADJ_ROOM_ENCAP_L4_GRE;
	return fl;
}

static __always_inline __u8 outer_proto(const struct kv_real *r, __u8 inner)
{
	if (r->encap == KV_ENCAP_GUE)
		return IPPROTO_UDP;
	if (r->encap == KV_ENCAP_GRE)
		return IPPROTO_GRE;
	return inner;
}

static __always_inline int encap_v4(struct __sk_buff *skb, const struct flow *f, const struct kv_real *r, __u32 hash)
{
	__u32 hdr = outer_len(r);
	struct iphdr oh = {};
	oh.version = 4;
	oh.ihl = 5;
	oh.tos = f->tos;
	__u32 len = f->inner_len + hdr;
	oh.tot_len = bpf_htons(len > 0xffff ? 0xffff : len);
	oh.id = (__u16)bpf_get_prandom_u32();
	oh.frag_off = f->df ? bpf_htons(IP_DF) : 0;
	oh.ttl = f->ttl;
	oh.protocol = outer_proto(r, IPPROTO_IPIP);
	oh.saddr = r->saddr[0];
	oh.daddr = r->daddr[0];
	__u32 sum = 0;
	__u16 *w = (__u16 *)&oh;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(oh) / 2); i++)
		sum += w[i];
	oh.check = csum_fold(sum);
	if (bpf_skb_adjust_room(skb, hdr, BPF_ADJ_ROOM_MAC, room_flags(r)))
		return -1;
	if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &oh, sizeof(oh), 0))
		return -1;
	return store_l4(skb, sizeof(struct ethhdr) + sizeof(oh), f, r, hash, len - sizeof(oh));
}

static __always_inline int encap_v6(struct __sk_buff *skb, const struct flow *f, const struct kv_real *r, __u32 hash)
{
	__u32 hdr = outer_len(r);
	struct ipv6hdr oh = {};
	oh.version = 6;
	oh.priority = f->tos >> 4;
	oh.flow_lbl[0] = (f->tos & 0xf) << 4;
	__u32 payload = f->inner_len + hdr - sizeof(oh);
	oh.payload_len = bpf_htons(payload);
	oh.nexthdr = outer_proto(r, IPPROTO_IPV6);
	oh.hop_limit = f->ttl;
	__builtin_memcpy(&oh.saddr, r->saddr, 16);
	__builtin_memcpy(&oh.daddr, r->daddr, 16);
	if (bpf_skb_adjust_room(skb, hdr, BPF_ADJ_ROOM_MAC, room_flags(r)))
		return -1;
	if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &oh, sizeof(oh), 0))
		return -1;
	return store_l4(skb, sizeof(struct ethhdr) + sizeof(oh), f, r, hash, payload);
}

SEC("tc")
int kv_tun_encap(struct __sk_buff *skb)
{
	struct flow f = {};
	if (parse(skb, &f) < 0)
		return TC_ACT_OK;

	struct kv_svc_key key = { .family = f.family, .proto = f.proto, .port = f.dport };
	__builtin_memcpy(key.addr, f.daddr, 16);
	struct kv_svc_val *svc = bpf_map_lookup_elem(&kv_services, &key);
	if (!svc) {
		key.port = 0; /* an all-ports (port 0, persistent) service */
		svc = bpf_map_lookup_elem(&kv_services, &key);
		if (!svc)
			return TC_ACT_OK;
	}
	if (svc->nslots == 0) {
		count(KV_ST_NO_REAL);
		return TC_ACT_SHOT;
	}
	__u32 hash = flow_hash(&f, svc);
	struct kv_flow_key fk = { .sport = f.sport, .dport = f.dport, .proto = f.proto, .family = f.family };
	__builtin_memcpy(fk.saddr, f.saddr, 16);
	__builtin_memcpy(fk.daddr, f.daddr, 16);
	__u32 ri = KV_NO_REAL;
	struct kv_real *r = 0;
	if (!f.syn) {
		/* an established flow stays where it went, whatever the table says now */
		struct kv_flow_val *fv = bpf_map_lookup_elem(&kv_flows, &fk);
		if (fv) {
			__u32 pinned = fv->real;
			struct kv_real *pr = bpf_map_lookup_elem(&kv_reals, &pinned);
			if (pr && pr->gen == fv->gen && pr->family == f.family) {
				if (pr->flags & KV_REAL_GONE) {
					count(KV_ST_NO_DEST);
					return TC_ACT_SHOT;
				}
				ri = pinned;
				r = pr;
			}
		}
	}
	if (!r) {
		__u32 idx = svc->base + hash % svc->nslots;
		struct kv_slot *slot = bpf_map_lookup_elem(&kv_slots, &idx);
		if (!slot) {
			count(KV_ST_ERROR);
			return TC_ACT_SHOT;
		}
		ri = f.syn ? slot->real_syn : slot->real;
		r = ri == KV_NO_REAL ? 0 : bpf_map_lookup_elem(&kv_reals, &ri);
		if (!r || r->family != f.family) {
			count(KV_ST_NO_REAL);
			return TC_ACT_SHOT;
		}
		struct kv_flow_val nv = { .real = ri, .gen = r->gen };
		bpf_map_update_elem(&kv_flows, &fk, &nv, BPF_ANY);
	}

	__u32 hdr = outer_len(r);
	__u32 mtu_len = 0;
	/* the real MTU check: bigger packets cannot be fragmented on this path (no ICMP either) */
	if (bpf_check_mtu(skb, r->ifindex, &mtu_len, (__s32)hdr, 0) != 0) {
		count(KV_ST_TOO_BIG);
		return TC_ACT_SHOT;
	}

	__u32 len = skb->len;
	int rc = f.family == KV_FAMILY_V4 ? encap_v4(skb, &f, r, hash) : encap_v6(skb, &f, r, hash);
	if (rc) {
		count(KV_ST_ERROR);
		return TC_ACT_SHOT;
	}
	count(KV_ST_ENCAP);
	struct kv_real_stats *st = bpf_map_lookup_elem(&kv_real_stats, &ri);
	if (st) {
		st->packets += 1;
		st->bytes += len;
		if (f.syn)
			st->conns += 1;
	}
	/* the kernel resolves the next hop's MAC (route + neighbour lookup on that interface) */
	return bpf_redirect_neigh(r->ifindex, 0, 0, 0);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
