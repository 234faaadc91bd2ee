//! The kernel's numbers ncc speaks over netlink, in one place and named as in the UAPI headers
//! (and libnftnl's `udata.h`): netlink framing, rtnetlink, generic netlink and IPVS, nfnetlink,
//! ctnetlink and nf_tables. The codecs ([`super::netlink`], [`super::rtnl`], the IPVS codec,
//! `nfnl` and `wire` of the nftables plane) import them from here.

// === netlink.h: the message header, its flags and control types, attributes ===

/// `NLMSG_HDRLEN`: the size of `nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// `NLMSG_NOOP`.
pub const NLMSG_NOOP: u16 = 1;
/// `NLMSG_ERROR`: an `i32` code (0 acknowledges, else `-errno`), then the request's echo.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_EXCL`.
pub const NLM_F_EXCL: u16 = 0x200;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLM_F_CREATE`.
pub const NLM_F_CREATE: u16 = 0x400;
/// `NLM_F_APPEND`.
pub const NLM_F_APPEND: u16 = 0x800;
/// `NLA_F_NESTED`: the attribute holds attributes.
pub const NLA_F_NESTED: u16 = 0x8000;
/// The attribute type without its flags (`NLA_TYPE_MASK`).
pub const NLA_TYPE_MASK: u16 = 0x3fff;

// === rtnetlink.h, if_addr.h, if_link.h, if_tunnel.h, fib_rules.h, socket.h ===

/// `RTM_NEWLINK`.
pub const RTM_NEWLINK: u16 = 16;
/// `RTM_DELLINK`.
pub const RTM_DELLINK: u16 = 17;
/// `RTM_GETLINK`.
pub const RTM_GETLINK: u16 = 18;
/// `RTM_NEWADDR`.
pub const RTM_NEWADDR: u16 = 20;
/// `RTM_DELADDR`.
pub const RTM_DELADDR: u16 = 21;
/// `RTM_GETADDR`.
pub const RTM_GETADDR: u16 = 22;
/// `RTM_NEWROUTE`.
pub const RTM_NEWROUTE: u16 = 24;
/// `RTM_DELROUTE`.
pub const RTM_DELROUTE: u16 = 25;
/// `RTM_GETROUTE`.
pub const RTM_GETROUTE: u16 = 26;
/// `RTM_NEWRULE`.
pub const RTM_NEWRULE: u16 = 32;
/// `RTM_DELRULE`.
pub const RTM_DELRULE: u16 = 33;
/// `RTM_GETRULE`.
pub const RTM_GETRULE: u16 = 34;
/// `IFLA_ADDRESS`.
pub const IFLA_ADDRESS: u16 = 1;
/// `IFLA_IFNAME`.
pub const IFLA_IFNAME: u16 = 3;
/// `IFLA_LINK`.
pub const IFLA_LINK: u16 = 5;
/// `IFLA_LINKINFO`.
pub const IFLA_LINKINFO: u16 = 18;
/// `IFLA_PERM_ADDRESS`.
pub const IFLA_PERM_ADDRESS: u16 = 54;
/// `IFLA_INFO_KIND`.
pub const IFLA_INFO_KIND: u16 = 1;
/// `IFLA_INFO_DATA`.
pub const IFLA_INFO_DATA: u16 = 2;
/// `IFLA_VLAN_ID`.
pub const IFLA_VLAN_ID: u16 = 1;
/// `linux/if_tunnel.h`: the local and remote addresses and (ip6tnl) the inner protocol.
pub const IFLA_IPTUN_LOCAL: u16 = 2;
/// `IFLA_IPTUN_REMOTE`.
pub const IFLA_IPTUN_REMOTE: u16 = 3;
/// `IFLA_IPTUN_PROTO`.
pub const IFLA_IPTUN_PROTO: u16 = 9;
/// `IPPROTO_IPV6`.
pub const IPPROTO_IPV6: u8 = 41;
/// `RTA_DST`.
pub const RTA_DST: u16 = 1;
/// `RTA_OIF`.
pub const RTA_OIF: u16 = 4;
/// `RTA_GATEWAY`.
pub const RTA_GATEWAY: u16 = 5;
/// `RTA_PRIORITY`.
pub const RTA_PRIORITY: u16 = 6;
/// `RTA_TABLE`.
pub const RTA_TABLE: u16 = 15;
/// `FRA_DST`.
pub const FRA_DST: u16 = 1;
/// `FRA_SRC`.
pub const FRA_SRC: u16 = 2;
/// `FRA_PRIORITY`.
pub const FRA_PRIORITY: u16 = 6;
/// `FRA_TABLE`.
pub const FRA_TABLE: u16 = 15;
/// `FRA_PROTOCOL`.
pub const FRA_PROTOCOL: u16 = 21;
/// `FR_ACT_TO_TBL`: a rule that looks a table up.
pub const FR_ACT_TO_TBL: u8 = 1;
/// `RTN_UNICAST`.
pub const RTN_UNICAST: u8 = 1;
/// `RT_SCOPE_UNIVERSE`.
pub const RT_SCOPE_UNIVERSE: u8 = 0;
/// `RT_SCOPE_LINK`.
pub const RT_SCOPE_LINK: u8 = 253;
/// `RT_TABLE_MAIN`.
pub const RT_TABLE_MAIN: u32 = 254;
/// `IFA_ADDRESS`.
pub const IFA_ADDRESS: u16 = 1;
/// `IFA_LOCAL`.
pub const IFA_LOCAL: u16 = 2;
/// `IFA_FLAGS`.
pub const IFA_FLAGS: u16 = 8;
/// `IFA_PROTO`.
pub const IFA_PROTO: u16 = 11;
/// `IFA_F_NODAD`.
pub const IFA_F_NODAD: u8 = 0x02;
/// `IFF_UP`.
pub const IFF_UP: u32 = 0x1;
/// `AF_INET`.
pub const AF_INET: u8 = 2;
/// `AF_INET6`.
pub const AF_INET6: u8 = 10;

// === genetlink.h (the controller) and ip_vs.h ===

/// Generic netlink controller family id.
pub const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_GETFAMILY`.
pub const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID`.
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME`.
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;

/// `IPVS_GENL_VERSION`.
pub const IPVS_GENL_VERSION: u8 = 1;

/// `IPVS_CMD_ATTR_SERVICE`.
pub const IPVS_CMD_ATTR_SERVICE: u16 = 1;
/// `IPVS_CMD_ATTR_DEST`.
pub const IPVS_CMD_ATTR_DEST: u16 = 2;

/// `IPVS_SVC_ATTR_AF`.
pub const IPVS_SVC_ATTR_AF: u16 = 1;
/// `IPVS_SVC_ATTR_PROTOCOL`.
pub const IPVS_SVC_ATTR_PROTOCOL: u16 = 2;
/// `IPVS_SVC_ATTR_ADDR`.
pub const IPVS_SVC_ATTR_ADDR: u16 = 3;
/// `IPVS_SVC_ATTR_PORT`.
pub const IPVS_SVC_ATTR_PORT: u16 = 4;
/// `IPVS_SVC_ATTR_FWMARK`.
pub const IPVS_SVC_ATTR_FWMARK: u16 = 5;
/// `IPVS_SVC_ATTR_SCHED_NAME`.
pub const IPVS_SVC_ATTR_SCHED_NAME: u16 = 6;
/// `IPVS_SVC_ATTR_FLAGS`.
pub const IPVS_SVC_ATTR_FLAGS: u16 = 7;
/// `IPVS_SVC_ATTR_TIMEOUT`.
pub const IPVS_SVC_ATTR_TIMEOUT: u16 = 8;
/// `IPVS_SVC_ATTR_NETMASK`.
pub const IPVS_SVC_ATTR_NETMASK: u16 = 9;
/// `IPVS_SVC_ATTR_STATS`.
pub const IPVS_SVC_ATTR_STATS: u16 = 10;
/// `IPVS_SVC_ATTR_STATS64`.
pub const IPVS_SVC_ATTR_STATS64: u16 = 12;

/// `IPVS_DEST_ATTR_ADDR`.
pub const IPVS_DEST_ATTR_ADDR: u16 = 1;
/// `IPVS_DEST_ATTR_PORT`.
pub const IPVS_DEST_ATTR_PORT: u16 = 2;
/// `IPVS_DEST_ATTR_FWD_METHOD`.
pub const IPVS_DEST_ATTR_FWD_METHOD: u16 = 3;
/// `IPVS_DEST_ATTR_WEIGHT`.
pub const IPVS_DEST_ATTR_WEIGHT: u16 = 4;
/// `IPVS_DEST_ATTR_U_THRESH`.
pub const IPVS_DEST_ATTR_U_THRESH: u16 = 5;
/// `IPVS_DEST_ATTR_L_THRESH`.
pub const IPVS_DEST_ATTR_L_THRESH: u16 = 6;
/// `IPVS_DEST_ATTR_ACTIVE_CONNS`.
pub const IPVS_DEST_ATTR_ACTIVE_CONNS: u16 = 7;
/// `IPVS_DEST_ATTR_INACT_CONNS`.
pub const IPVS_DEST_ATTR_INACT_CONNS: u16 = 8;
/// `IPVS_DEST_ATTR_PERSIST_CONNS`.
pub const IPVS_DEST_ATTR_PERSIST_CONNS: u16 = 9;
/// `IPVS_DEST_ATTR_STATS`.
pub const IPVS_DEST_ATTR_STATS: u16 = 10;
/// `IPVS_DEST_ATTR_ADDR_FAMILY`.
pub const IPVS_DEST_ATTR_ADDR_FAMILY: u16 = 11;
/// `IPVS_DEST_ATTR_STATS64`.
pub const IPVS_DEST_ATTR_STATS64: u16 = 12;

/// `IPVS_STATS_ATTR_CONNS`.
pub const IPVS_STATS_ATTR_CONNS: u16 = 1;
/// `IPVS_STATS_ATTR_INPKTS`.
pub const IPVS_STATS_ATTR_INPKTS: u16 = 2;
/// `IPVS_STATS_ATTR_OUTPKTS`.
pub const IPVS_STATS_ATTR_OUTPKTS: u16 = 3;
/// `IPVS_STATS_ATTR_INBYTES`.
pub const IPVS_STATS_ATTR_INBYTES: u16 = 4;
/// `IPVS_STATS_ATTR_OUTBYTES`.
pub const IPVS_STATS_ATTR_OUTBYTES: u16 = 5;

// === nfnetlink.h, nfnetlink_conntrack.h, nf_conntrack_tcp.h, nf_tables.h: the dumps ===

/// `NETLINK_NETFILTER`.
pub const NETLINK_NETFILTER: i32 = 12;
/// `NFNL_SUBSYS_CTNETLINK`.
pub const NFNL_SUBSYS_CTNETLINK: u16 = 1;
/// `NFNL_SUBSYS_NFTABLES`.
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `IPCTNL_MSG_CT_NEW`.
pub const IPCTNL_MSG_CT_NEW: u16 = 0;
/// `IPCTNL_MSG_CT_GET`.
pub const IPCTNL_MSG_CT_GET: u16 = 1;
/// `NFT_MSG_NEWSETELEM`.
pub const NFT_MSG_NEWSETELEM: u16 = 12;
/// `NFT_MSG_GETSETELEM`.
pub const NFT_MSG_GETSETELEM: u16 = 13;
/// `NFT_MSG_NEWGEN`.
pub const NFT_MSG_NEWGEN: u16 = 15;
/// `NFT_MSG_GETGEN`.
pub const NFT_MSG_GETGEN: u16 = 16;
/// `NFTA_GEN_ID`.
pub const NFTA_GEN_ID: u16 = 1;

/// `NFPROTO_NETDEV`: the family of the DSR table.
pub const NFPROTO_NETDEV: u8 = 5;

/// `CTA_TUPLE_ORIG`.
pub const CTA_TUPLE_ORIG: u16 = 1;
/// `CTA_TUPLE_REPLY`.
pub const CTA_TUPLE_REPLY: u16 = 2;
/// `CTA_TUPLE_IP`.
pub const CTA_TUPLE_IP: u16 = 1;
/// `CTA_IP_V4_SRC`.
pub const CTA_IP_V4_SRC: u16 = 1;
/// `CTA_IP_V4_DST`.
pub const CTA_IP_V4_DST: u16 = 2;
/// `CTA_IP_V6_SRC`.
pub const CTA_IP_V6_SRC: u16 = 3;
/// `CTA_IP_V6_DST`.
pub const CTA_IP_V6_DST: u16 = 4;
/// `CTA_TUPLE_PROTO`.
pub const CTA_TUPLE_PROTO: u16 = 2;
/// `CTA_PROTO_NUM`.
pub const CTA_PROTO_NUM: u16 = 1;
/// `CTA_PROTO_SRC_PORT`.
pub const CTA_PROTO_SRC_PORT: u16 = 2;
/// `CTA_PROTO_DST_PORT`.
pub const CTA_PROTO_DST_PORT: u16 = 3;
/// `CTA_PROTOINFO`.
pub const CTA_PROTOINFO: u16 = 4;
/// `CTA_PROTOINFO_TCP`.
pub const CTA_PROTOINFO_TCP: u16 = 1;
/// `CTA_PROTOINFO_TCP_STATE`.
pub const CTA_PROTOINFO_TCP_STATE: u16 = 1;
/// `CTA_MARK`.
pub const CTA_MARK: u16 = 8;
/// `CTA_MARK_MASK`.
pub const CTA_MARK_MASK: u16 = 21;
/// `TCP_CONNTRACK_ESTABLISHED`.
pub const TCP_CONNTRACK_ESTABLISHED: u8 = 3;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u8 = 6;

/// `NFTA_SET_ELEM_LIST_TABLE`.
pub const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
/// `NFTA_SET_ELEM_LIST_SET`.
pub const NFTA_SET_ELEM_LIST_SET: u16 = 2;
/// `NFTA_SET_ELEM_LIST_ELEMENTS`.
pub const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
/// `NFTA_LIST_ELEM`.
pub const NFTA_LIST_ELEM: u16 = 1;
/// `NFTA_SET_ELEM_DATA`.
pub const NFTA_SET_ELEM_DATA: u16 = 2;
/// `NFTA_DATA_VALUE`.
pub const NFTA_DATA_VALUE: u16 = 1;

// === nf_tables.h, libnftnl's udata: the batch ncc writes ===

/// `NFNL_MSG_BATCH_BEGIN`.
pub const NFNL_MSG_BATCH_BEGIN: u16 = 16;
/// `NFNL_MSG_BATCH_END`.
pub const NFNL_MSG_BATCH_END: u16 = 17;
/// `NFT_MSG_NEWRULE`.
pub const NFT_MSG_NEWRULE: u16 = 6;
/// `NFT_MSG_DELRULE`.
pub const NFT_MSG_DELRULE: u16 = 8;
/// `NFT_MSG_DELSETELEM`.
pub const NFT_MSG_DELSETELEM: u16 = 14;
/// `NFPROTO_INET`.
pub const NFPROTO_INET: u8 = 1;

/// `NFTA_SET_ELEM_KEY`.
pub const NFTA_SET_ELEM_KEY: u16 = 1;
/// `NFTA_SET_ELEM_USERDATA`.
pub const NFTA_SET_ELEM_USERDATA: u16 = 6;
/// `NFTA_DATA_VERDICT`.
pub const NFTA_DATA_VERDICT: u16 = 2;
/// `NFTA_VERDICT_CODE`.
pub const NFTA_VERDICT_CODE: u16 = 1;
/// `NFTA_VERDICT_CHAIN`.
pub const NFTA_VERDICT_CHAIN: u16 = 2;
/// `NFT_RETURN`.
pub const NFT_RETURN: i32 = -5;
/// `NFT_JUMP`.
pub const NFT_JUMP: i32 = -3;
/// `NFTNL_UDATA_COMMENT`.
pub const NFTNL_UDATA_COMMENT: u8 = 0;

/// `NFTA_RULE_TABLE`.
pub const NFTA_RULE_TABLE: u16 = 1;
/// `NFTA_RULE_CHAIN`.
pub const NFTA_RULE_CHAIN: u16 = 2;
/// `NFTA_RULE_EXPRESSIONS`.
pub const NFTA_RULE_EXPRESSIONS: u16 = 4;
/// `NFTA_EXPR_NAME`.
pub const NFTA_EXPR_NAME: u16 = 1;
/// `NFTA_EXPR_DATA`.
pub const NFTA_EXPR_DATA: u16 = 2;

/// `NFT_REG_VERDICT`.
pub const NFT_REG_VERDICT: u32 = 0;
/// `NFT_REG_1` (128 bits; its first 32 are `NFT_REG32_00`).
pub const NFT_REG_1: u32 = 1;
/// `NFT_REG_2`.
pub const NFT_REG_2: u32 = 2;
/// `NFT_REG32_01`: the 32 bits after `NFT_REG32_00`.
pub const NFT_REG32_01: u32 = 9;

/// `NFT_META_PROTOCOL`: the link layer's protocol (`__be16`).
pub const NFT_META_PROTOCOL: u32 = 1;
/// `NFT_META_MARK` (and `NFT_CT_MARK`, the same number in `nft_ct_keys`).
pub const NFT_META_MARK: u32 = 3;
/// `NFT_META_NFPROTO`: the netfilter family (`u8`).
pub const NFT_META_NFPROTO: u32 = 15;
/// `NFT_PAYLOAD_NETWORK_HEADER`.
pub const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
/// `NFT_PAYLOAD_TRANSPORT_HEADER`.
pub const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
/// `NFT_CMP_EQ`.
pub const NFT_CMP_EQ: u32 = 0;
/// `NFT_CMP_NEQ`.
pub const NFT_CMP_NEQ: u32 = 1;
