/* SPDX-License-Identifier: MIT */
/*
 * Shared layout of keepvs's TUN maps. Mirrored by src/dataplane/tun/layout.ts: any change here must be
 * made there too (test/dataplane/tun-layout.test.ts compares the sizes with the compiled object's BTF).
 */
#ifndef KEEPVS_TUN_COMMON_H
#define KEEPVS_TUN_COMMON_H

#include <linux/types.h>

#define KV_FAMILY_V4 4
#define KV_FAMILY_V6 6

/* svc_val.flags: which packet fields feed the flow hash */
#define KV_HASH_SADDR (1u << 0) /* source address (masked to svc_val.prefix) */
#define KV_HASH_SPORT (1u << 1) /* source port (rr-as-hash, sh-port, mh-port) */
#define KV_HASH_DADDR (1u << 2) /* destination address (dh) */

#define KV_NO_REAL 0xffffffffu

/* Service lookup key: address family, IP protocol, port (network order), address (IPv4 in addr[0]). */
struct kv_svc_key {
	__u8 family;
	__u8 proto;
	__be16 port;
	__u32 addr[4];
};

struct kv_svc_val {
	__u32 base;   /* first slot of this service's active table in kv_slots */
	__u32 nslots; /* table size (> 0) */
	__u32 flags;  /* KV_HASH_* */
	__u32 prefix; /* source prefix length hashed (persistence granularity); 32 / 128 = whole address */
};

/* One slot: the real server for established packets and the one for new TCP connections (SYN). */
struct kv_slot {
	__u32 real;     /* index into kv_reals, KV_NO_REAL = none */
	__u32 real_syn; /* differs from real while the slot's server is quiesced (weight 0) */
};

/* kv_real.encap: keepalived's tun_type (IPVS IP_VS_CONN_F_TUNNEL_TYPE_*) */
#define KV_ENCAP_IPIP 0
#define KV_ENCAP_GUE 1
#define KV_ENCAP_GRE 2

/* A real server of one service: where the outer header goes and how it leaves. */
struct kv_real {
	__u32 daddr[4]; /* outer destination (the real server) */
	__u32 saddr[4]; /* outer source (the director's address towards it) */
	__u32 ifindex;  /* egress interface */
	__u8 family;    /* KV_FAMILY_V4 or KV_FAMILY_V6, outer = inner */
	__u8 encap;     /* KV_ENCAP_* */
	__be16 port;    /* GUE: UDP destination port (tun_port) */
	__u32 gen;      /* changes whenever this index is given to another real server */
	__u32 flags;    /* KV_REAL_* */
};

/* removed from its service, expire_nodest_conn off: its pinned flows are dropped (IPVS: a connection
 * whose destination lost IP_VS_DEST_F_AVAILABLE, ip_vs_core.c ip_vs_in) until keepvs frees the index */
#define KV_REAL_GONE 1u

/* Flow pinning (IPVS's connection table, stateless): a flow keeps its real server across table changes. */
struct kv_flow_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u16 pad;
};

struct kv_flow_val {
	__u32 real;
	__u32 gen; /* kv_real.gen when pinned: a recycled index does not inherit the flow */
};

/* Per-real counters (per CPU, summed in user space). */
struct kv_real_stats {
	__u64 packets;
	__u64 bytes;
	__u64 conns; /* TCP SYNs scheduled to it (IPVS's Conns: connections scheduled) */
};

/* kv_stats indexes */
#define KV_ST_ENCAP 0     /* packets encapsulated */
#define KV_ST_NO_REAL 1   /* service matched, no real server: dropped */
#define KV_ST_TOO_BIG 2   /* would exceed the egress MTU once encapsulated: dropped */
#define KV_ST_ERROR 3     /* adjust_room / store failed: dropped */
#define KV_ST_DECAP 4     /* real server: packets decapsulated */
#define KV_ST_NOT_VIP 5   /* real server: IPIP to an address that is not a configured VIP: passed on */
#define KV_ST_NO_DEST 6   /* a pinned flow of a removed real server (expire_nodest_conn off): dropped */
#define KV_ST_MAX 8

/* Real-server side: a VIP the decapsulation program accepts. */
struct kv_vip_key {
	__u32 family;
	__u32 addr[4];
};

/* GUE header, version 0, no optional fields (draft-ietf-intarea-gue; IPVS ipvs_gue_encap) */
struct kv_guehdr {
	__u8 hlen_ctrl; /* version (2 bits) | C (1) | hlen (5): all 0 */
	__u8 proto_ctype;
	__be16 flags;
};

/* GRE header without checksum, key or sequence number (RFC 2784; IPVS ipvs_gre_encap) */
struct kv_grehdr {
	__be16 flags;
	__be16 proto;
};

#endif
