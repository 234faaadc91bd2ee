//! A transaction written as nf_tables netlink messages, without libnftables: the encoding of
//! the objects a health flip touches (set and map elements, a service chain's rules, the flush
//! of that chain) into one batch, pure. libnftables reads every chain of the ruleset before it
//! checks a script that deletes anything or adds an element or a rule (10,000 chains at
//! 10,000 services: 7–12 ms of every flip); a batch we encode ourselves has no cache to fill.
//! [`super::script::Script::batch`] decides which transactions take this way (the small,
//! common ones); everything else is still an nft script. Both are built from the same typed
//! values ([`Elem`], [`super::rules::SvcRule`]), and the test
//! `a_batch_leaves_the_kernel_as_the_script_does_in_a_private_netns` lists the kernel after
//! each way and finds the same tables.
//!
//! Derivation from the kernel UAPI (`linux/netfilter/nfnetlink.h`, `nf_tables.h`) and from
//! what `nft --debug=netlink` shows nft 1.0.6 sending for the same rules:
//!
//! - A batch is `NFNL_MSG_BATCH_BEGIN` (16) and `NFNL_MSG_BATCH_END` (17) around the messages,
//!   their `nfgenmsg` resource id `NFNL_SUBSYS_NFTABLES` (10, big-endian). The kernel applies
//!   the messages as one transaction or none. Only the last message asks for an ack
//!   (`NLM_F_ACK`): a refused message is answered with its error whether it asked or not, a
//!   refused commit with an error sent before any ack, so the answer is one ack or the first
//!   error ([`super::nfnl::read_acks`]) — an ack per message would overflow the socket's
//!   receive buffer at a few hundred messages.
//! - Message types are `NFNL_SUBSYS_NFTABLES << 8 | m`: `NFT_MSG_NEWRULE` 6 (flags `CREATE |
//!   APPEND`), `NFT_MSG_DELRULE` 8 (table and chain without a handle: the chain is flushed),
//!   `NFT_MSG_NEWSETELEM` 12 (`CREATE`), `NFT_MSG_DELSETELEM` 14. Family `NFPROTO_INET` 1
//!   (`inet seesaw`) or `NFPROTO_NETDEV` 5 (`netdev seesaw`).
//! - Elements: `NFTA_SET_ELEM_LIST_TABLE` 1, `_SET` 2, `_ELEMENTS` 3 { `NFTA_LIST_ELEM` 1 {
//!   `NFTA_SET_ELEM_KEY` 1 { `NFTA_DATA_VALUE` 1 }, `NFTA_SET_ELEM_DATA` 2 { `NFTA_DATA_VALUE` 1
//!   | `NFTA_DATA_VERDICT` 2 { `NFTA_VERDICT_CODE` 1 (`__be32`, `NFT_JUMP` -3),
//!   `NFTA_VERDICT_CHAIN` 2 } }, `NFTA_SET_ELEM_USERDATA` 6 } }. The comment is libnftnl's
//!   user-data record: type `NFTNL_UDATA_SET_ELEM_COMMENT` 0, length, the string with its NUL.
//!   A `mark` or `iface_index` is 4 bytes in host order; an address its octets; `inet_proto`
//!   one byte and `inet_service` two big-endian bytes; in a concatenation every part takes a
//!   whole number of 4-byte registers (zero-padded). Counters of a map declared `counter` are
//!   added to each new element by the kernel, from the set's expression.
//! - Rules: `NFTA_RULE_TABLE` 1, `_CHAIN` 2, `_EXPRESSIONS` 4 { `NFTA_LIST_ELEM` 1 {
//!   `NFTA_EXPR_NAME` 1, `NFTA_EXPR_DATA` 2 { … } } }, every number in an expression `__be32`
//!   (see [`Expr`]). Registers: `NFT_REG_VERDICT` 0, `NFT_REG_1` 1, `NFT_REG_2` 2, and the
//!   32-bit `NFT_REG32_01` 9 (the second part of a concatenation loaded at `NFT_REG_1`).

use std::net::{IpAddr, SocketAddr};

use super::Table;
use crate::kernel::netlink::{message, push_attr, push_nested};
use crate::kernel::uapi::{
    NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NFNL_SUBSYS_NFTABLES, NFPROTO_INET, NFPROTO_NETDEV,
    NFT_JUMP, NFT_MSG_DELRULE, NFT_MSG_DELSETELEM, NFT_MSG_NEWRULE, NFT_MSG_NEWSETELEM,
    NFT_REG_VERDICT, NFT_RETURN, NFTA_DATA_VALUE, NFTA_DATA_VERDICT, NFTA_EXPR_DATA,
    NFTA_EXPR_NAME, NFTA_LIST_ELEM, NFTA_RULE_CHAIN, NFTA_RULE_EXPRESSIONS, NFTA_RULE_TABLE,
    NFTA_SET_ELEM_DATA, NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_LIST_ELEMENTS, NFTA_SET_ELEM_LIST_SET,
    NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_USERDATA, NFTA_VERDICT_CHAIN, NFTA_VERDICT_CODE,
    NFTNL_UDATA_COMMENT, NLA_F_NESTED, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST,
};
use crate::model::{Protocol, ServiceKey};

/// The table's family and name as netlink names them.
fn table(t: Table) -> (u8, &'static str) {
    match t {
        Table::Nat => (NFPROTO_INET, "seesaw"),
        Table::Dsr => (NFPROTO_NETDEV, "seesaw"),
    }
}

fn cstr(s: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(s.len() + 1);
    b.extend_from_slice(s.as_bytes());
    b.push(0);
    b
}

fn be32(out: &mut Vec<u8>, kind: u16, v: u32) {
    push_attr(out, kind, &v.to_be_bytes());
}

/// `__be32` attributes numbered 1, 2, … in the order given (an expression whose attributes
/// are all numbers, without gaps).
fn numbered(out: &mut Vec<u8>, values: &[u32]) {
    for (kind, v) in (1u16..).zip(values) {
        be32(out, kind, *v);
    }
}

/// One element's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// A `mark` (a destination id, a slot, a firewall mark).
    Mark(u32),
    /// A service's `address . protocol . port` (the registries `svc*`/`aft*`).
    Tuple(ServiceKey),
}

/// One element's value (maps only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// A `mark`, written in hex (a destination id).
    Mark(u32),
    /// A `mark`, written in decimal (a weight).
    Num(u32),
    /// An address (`ipv4_addr`/`ipv6_addr`).
    Addr(IpAddr),
    /// `address . inet_service`.
    AddrPort(SocketAddr),
    /// `jump <chain>`.
    Jump(String),
    /// An `iface_index`, by the device's name.
    Dev(String),
}

/// One set or map element: its text in an nft script (`Display`) and its netlink encoding
/// ([`Batch::elems`]) come from this one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elem {
    /// The key.
    pub key: Key,
    /// Its comment.
    pub comment: Option<String>,
    /// The value (maps).
    pub val: Option<Val>,
}

impl Elem {
    /// An element `key` alone (a set's element, or the key of one to delete).
    pub fn key(key: Key) -> Self {
        Self {
            key,
            comment: None,
            val: None,
        }
    }

    /// A map's element `key : val`.
    pub fn map(key: Key, val: Val) -> Self {
        Self {
            key,
            comment: None,
            val: Some(val),
        }
    }

    /// The same element with `comment`.
    pub fn with_comment(mut self, comment: String) -> Self {
        self.comment = Some(comment);
        self
    }
}

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mark(m) => write!(f, "{m:#x}"),
            Self::Tuple(k) => write!(f, "{} . {} . {}", k.vip, proto_name(k.proto), k.port),
        }
    }
}

impl std::fmt::Display for Elem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.key)?;
        if let Some(c) = &self.comment {
            write!(f, " comment \"{c}\"")?;
        }
        match &self.val {
            None => Ok(()),
            Some(Val::Mark(m)) => write!(f, " : {m:#x}"),
            Some(Val::Num(n)) => write!(f, " : {n}"),
            Some(Val::Addr(a)) => write!(f, " : {a}"),
            Some(Val::AddrPort(a)) => write!(f, " : {} . {}", a.ip(), a.port()),
            Some(Val::Jump(c)) => write!(f, " : jump {c}"),
            Some(Val::Dev(d)) => write!(f, " : \"{d}\""),
        }
    }
}

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn proto_num(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
    }
}

fn key_bytes(k: &Key) -> Vec<u8> {
    match k {
        Key::Mark(m) => m.to_ne_bytes().to_vec(),
        Key::Tuple(s) => {
            let mut b = octets(s.vip);
            b.extend_from_slice(&[proto_num(s.proto), 0, 0, 0]);
            b.extend_from_slice(&s.port.to_be_bytes());
            b.extend_from_slice(&[0, 0]);
            b
        }
    }
}

/// The interface index of a device in this thread's network namespace.
fn ifindex(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok()
}

/// A verdict's payload (`NFTA_DATA_VERDICT`'s contents).
fn verdict(out: &mut Vec<u8>, code: i32, chain: Option<&str>) {
    push_nested(out, NFTA_DATA_VERDICT, |v| {
        push_attr(v, NFTA_VERDICT_CODE, &code.to_be_bytes());
        if let Some(c) = chain {
            push_attr(v, NFTA_VERDICT_CHAIN, &cstr(c));
        }
    });
}

/// Appends `NFTA_LIST_ELEM` for `e`; `None` when a device it names does not exist or its
/// comment is longer than a user-data record holds (the script way reports either).
fn elem(out: &mut Vec<u8>, e: &Elem) -> Option<()> {
    let comment_len = match &e.comment {
        Some(c) => Some(u8::try_from(c.len() + 1).ok()?),
        None => None,
    };
    let data = match &e.val {
        None => None,
        Some(Val::Mark(m) | Val::Num(m)) => Some(Ok(m.to_ne_bytes().to_vec())),
        Some(Val::Addr(a)) => Some(Ok(octets(*a))),
        Some(Val::AddrPort(a)) => {
            let mut b = octets(a.ip());
            b.extend_from_slice(&a.port().to_be_bytes());
            b.extend_from_slice(&[0, 0]);
            Some(Ok(b))
        }
        Some(Val::Dev(d)) => Some(Ok(ifindex(d)?.to_ne_bytes().to_vec())),
        Some(Val::Jump(c)) => Some(Err(c.as_str())),
    };
    push_nested(out, NFTA_LIST_ELEM, |le| {
        push_nested(le, NFTA_SET_ELEM_KEY, |k| {
            push_attr(k, NFTA_DATA_VALUE, &key_bytes(&e.key));
        });
        match &data {
            None => {}
            Some(Ok(v)) => {
                push_nested(le, NFTA_SET_ELEM_DATA, |d| push_attr(d, NFTA_DATA_VALUE, v))
            }
            Some(Err(chain)) => push_nested(le, NFTA_SET_ELEM_DATA, |d| {
                verdict(d, NFT_JUMP, Some(chain));
            }),
        }
        if let (Some(c), Some(len)) = (&e.comment, comment_len) {
            let mut u = vec![NFTNL_UDATA_COMMENT, len];
            u.extend_from_slice(&cstr(c));
            push_attr(le, NFTA_SET_ELEM_USERDATA, &u);
        }
    });
    Some(())
}

/// One expression of a rule, as nft 1.0.6 encodes the rules of a service chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `immediate`: a value into `dreg`.
    Value {
        /// Destination register.
        dreg: u32,
        /// The bytes.
        data: Vec<u8>,
    },
    /// `immediate reg 0 return`.
    Return,
    /// `cmp`: `sreg` `op` `data`.
    Cmp {
        /// Source register.
        sreg: u32,
        /// [`NFT_CMP_EQ`] or [`NFT_CMP_NEQ`].
        op: u32,
        /// The bytes compared.
        data: Vec<u8>,
    },
    /// `payload load len @ base + offset => dreg`.
    Payload {
        /// Destination register.
        dreg: u32,
        /// [`NFT_PAYLOAD_NETWORK_HEADER`] or [`NFT_PAYLOAD_TRANSPORT_HEADER`].
        base: u32,
        /// Offset in the header.
        offset: u32,
        /// Bytes.
        len: u32,
    },
    /// `meta load key => reg`, or (`set`) `meta set key with reg`.
    Meta {
        /// [`NFT_META_PROTOCOL`], [`NFT_META_MARK`], [`NFT_META_NFPROTO`].
        key: u32,
        /// The register loaded, or read to set the key.
        reg: u32,
        /// Set the key rather than load it.
        set: bool,
    },
    /// `ct load key => reg`, or (`set`) `ct set key with reg`.
    Ct {
        /// [`NFT_META_MARK`].
        key: u32,
        /// The register loaded, or read to set the key.
        reg: u32,
        /// Set the key rather than load it.
        set: bool,
    },
    /// `lookup sreg set name dreg`.
    Lookup {
        /// The map.
        set: String,
        /// Source register (the key).
        sreg: u32,
        /// Destination register (the value).
        dreg: u32,
    },
    /// `numgen dreg = inc|random mod modulus offset offset`.
    Numgen {
        /// Destination register.
        dreg: u32,
        /// Modulus.
        modulus: u32,
        /// `NFT_NG_RANDOM` rather than `NFT_NG_INCREMENTAL`.
        random: bool,
        /// Added to the result.
        offset: u32,
    },
    /// `hash dreg = jhash(sreg, len, seed) % mod modulus offset offset`.
    Jhash {
        /// Source register.
        sreg: u32,
        /// Destination register.
        dreg: u32,
        /// Bytes hashed.
        len: u32,
        /// Modulus.
        modulus: u32,
        /// Seed.
        seed: u32,
        /// Added to the result.
        offset: u32,
    },
}

impl Expr {
    fn name(&self) -> &'static str {
        match self {
            Self::Value { .. } | Self::Return => "immediate",
            Self::Cmp { .. } => "cmp",
            Self::Payload { .. } => "payload",
            Self::Meta { .. } => "meta",
            Self::Ct { .. } => "ct",
            Self::Lookup { .. } => "lookup",
            Self::Numgen { .. } => "numgen",
            Self::Jhash { .. } => "hash",
        }
    }

    /// `NFTA_EXPR_DATA`'s contents. Attribute numbers: immediate DREG 1 DATA 2; cmp SREG 1 OP 2
    /// DATA 3; payload DREG 1 BASE 2 OFFSET 3 LEN 4; meta DREG 1 KEY 2 SREG 3; ct DREG 1 KEY 2
    /// SREG 4; lookup SET 1 SREG 2 DREG 3; numgen DREG 1 MODULUS 2 TYPE 3 OFFSET 4; hash SREG 1
    /// DREG 2 LEN 3 MODULUS 4 SEED 5 OFFSET 6 TYPE 7 (`NFT_HASH_JENKINS` 0).
    fn data(&self, out: &mut Vec<u8>) {
        match self {
            Self::Value { dreg, data } => {
                be32(out, 1, *dreg);
                push_nested(out, 2, |d| push_attr(d, NFTA_DATA_VALUE, data));
            }
            Self::Return => {
                be32(out, 1, NFT_REG_VERDICT);
                push_nested(out, 2, |d| verdict(d, NFT_RETURN, None));
            }
            Self::Cmp { sreg, op, data } => {
                be32(out, 1, *sreg);
                be32(out, 2, *op);
                push_nested(out, 3, |d| push_attr(d, NFTA_DATA_VALUE, data));
            }
            Self::Payload {
                dreg,
                base,
                offset,
                len,
            } => numbered(out, &[*dreg, *base, *offset, *len]),
            Self::Meta { key, reg, set } | Self::Ct { key, reg, set } => {
                let sreg = if matches!(self, Self::Meta { .. }) {
                    3
                } else {
                    4
                };
                if !*set {
                    be32(out, 1, *reg);
                }
                be32(out, 2, *key);
                if *set {
                    be32(out, sreg, *reg);
                }
            }
            Self::Lookup { set, sreg, dreg } => {
                push_attr(out, 1, &cstr(set));
                be32(out, 2, *sreg);
                be32(out, 3, *dreg);
            }
            Self::Numgen {
                dreg,
                modulus,
                random,
                offset,
            } => numbered(out, &[*dreg, *modulus, u32::from(*random), *offset]),
            Self::Jhash {
                sreg,
                dreg,
                len,
                modulus,
                seed,
                offset,
            } => numbered(out, &[*sreg, *dreg, *len, *modulus, *seed, *offset, 0]),
        }
    }
}

/// One nf_tables batch being encoded.
#[derive(Debug)]
pub struct Batch {
    buf: Vec<u8>,
    seq: u32,
    /// Messages between begin and end.
    pub messages: usize,
    /// Where the last of them starts.
    last_at: usize,
}

/// Elements per message (a message stays far below netlink's 64 KiB attribute limit).
const ELEMS_PER_MESSAGE: usize = 256;

impl Batch {
    /// A batch whose first message has sequence number `seq`.
    pub fn new(seq: u32) -> Self {
        let mut b = Self {
            buf: Vec::new(),
            seq,
            messages: 0,
            last_at: 0,
        };
        b.control(NFNL_MSG_BATCH_BEGIN);
        b
    }

    fn control(&mut self, ty: u16) {
        let res = NFNL_SUBSYS_NFTABLES.to_be_bytes();
        let body = [0, 0, res[0], res[1]];
        self.buf
            .extend_from_slice(&message(ty, NLM_F_REQUEST, self.seq, &body));
        self.seq = self.seq.wrapping_add(1);
    }

    fn push(&mut self, ty: u16, flags: u16, family: u8, attrs: &[u8]) {
        let mut body = Vec::with_capacity(4 + attrs.len());
        body.extend_from_slice(&[family, 0, 0, 0]);
        body.extend_from_slice(attrs);
        self.last_at = self.buf.len();
        self.buf.extend_from_slice(&message(
            NFNL_SUBSYS_NFTABLES << 8 | ty,
            NLM_F_REQUEST | flags,
            self.seq,
            &body,
        ));
        self.seq = self.seq.wrapping_add(1);
        self.messages += 1;
    }

    /// Adds (`add`) or deletes the elements `elems` of set `set` in table `t`. `None` when an
    /// element names a device that does not exist (the script way reports that error).
    pub fn elems(&mut self, add: bool, t: Table, set: &str, elems: &[Elem]) -> Option<()> {
        let (family, name) = table(t);
        for chunk in elems.chunks(ELEMS_PER_MESSAGE) {
            let mut attrs = Vec::new();
            push_attr(&mut attrs, NFTA_SET_ELEM_LIST_TABLE, &cstr(name));
            push_attr(&mut attrs, NFTA_SET_ELEM_LIST_SET, &cstr(set));
            let mut list = Vec::new();
            for e in chunk {
                elem(&mut list, e)?;
            }
            push_attr(
                &mut attrs,
                NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED,
                &list,
            );
            let (ty, flags) = if add {
                (NFT_MSG_NEWSETELEM, NLM_F_CREATE)
            } else {
                (NFT_MSG_DELSETELEM, 0)
            };
            self.push(ty, flags, family, &attrs);
        }
        Some(())
    }

    /// Deletes every rule of chain `chain` in table `t` (`flush chain`).
    pub fn flush_chain(&mut self, t: Table, chain: &str) {
        let (family, name) = table(t);
        let mut attrs = Vec::new();
        push_attr(&mut attrs, NFTA_RULE_TABLE, &cstr(name));
        push_attr(&mut attrs, NFTA_RULE_CHAIN, &cstr(chain));
        self.push(NFT_MSG_DELRULE, 0, family, &attrs);
    }

    /// Appends a rule of `exprs` to chain `chain` in table `t`.
    pub fn rule(&mut self, t: Table, chain: &str, exprs: &[Expr]) {
        let (family, name) = table(t);
        let mut attrs = Vec::new();
        push_attr(&mut attrs, NFTA_RULE_TABLE, &cstr(name));
        push_attr(&mut attrs, NFTA_RULE_CHAIN, &cstr(chain));
        push_nested(&mut attrs, NFTA_RULE_EXPRESSIONS, |list| {
            for e in exprs {
                push_nested(list, NFTA_LIST_ELEM, |x| {
                    push_attr(x, NFTA_EXPR_NAME, &cstr(e.name()));
                    push_nested(x, NFTA_EXPR_DATA, |d| e.data(d));
                });
            }
        });
        self.push(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, family, &attrs);
    }

    /// The datagram, and the sequence number of its last message (whose ack ends the reply).
    pub fn finish(mut self) -> (Vec<u8>, u32) {
        let last = self.seq.wrapping_sub(1);
        if self.messages > 0 {
            // The flags of the last message (`nlmsghdr` bytes 6..8): ask for the ack.
            let at = self.last_at + 6;
            let flags = u16::from_ne_bytes([self.buf[at], self.buf[at + 1]]) | NLM_F_ACK;
            self.buf[at..at + 2].copy_from_slice(&flags.to_ne_bytes());
        }
        self.control(NFNL_MSG_BATCH_END);
        (self.buf, last)
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing but the batch's begin was written.
    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod kernel_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::uapi::NFT_REG_1;

    #[test]
    fn elements_print_as_the_script_spells_them() {
        let k = ServiceKey::new("192.0.2.1".parse().unwrap(), Protocol::Tcp, 80);
        let cases = [
            (Elem::key(Key::Mark(0x5ee0_0001)), "0x5ee00001"),
            (
                Elem::map(Key::Mark(0x5ee0_0001), Val::Num(3)),
                "0x5ee00001 : 3",
            ),
            (
                Elem::map(Key::Mark(0x3000_0004), Val::Mark(0x5ee0_0001)),
                "0x30000004 : 0x5ee00001",
            ),
            (
                Elem::map(
                    Key::Mark(0x5ee0_0001),
                    Val::AddrPort("10.0.0.1:8080".parse().unwrap()),
                )
                .with_comment("sid=4".into()),
                "0x5ee00001 comment \"sid=4\" : 10.0.0.1 . 8080",
            ),
            (
                Elem::map(Key::Tuple(k), Val::Jump("s4".into())).with_comment("x".into()),
                "192.0.2.1 . tcp . 80 comment \"x\" : jump s4",
            ),
            (
                Elem::map(Key::Mark(1), Val::Dev("sst0a000001".into())),
                "0x1 : \"sst0a000001\"",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
    }

    #[test]
    fn an_element_whose_comment_a_record_cannot_hold_is_left_to_the_script() {
        let mut b = Batch::new(1);
        let e = |n: usize| vec![Elem::key(Key::Mark(1)).with_comment("c".repeat(n))];
        assert_eq!(b.elems(true, Table::Nat, "cin", &e(254)), Some(()));
        assert_eq!(b.elems(true, Table::Nat, "cin", &e(255)), None);
    }

    #[test]
    fn a_concatenated_key_takes_whole_registers() {
        let k = ServiceKey::new("192.0.2.1".parse().unwrap(), Protocol::Udp, 80);
        assert_eq!(
            key_bytes(&Key::Tuple(k)),
            [192, 0, 2, 1, 17, 0, 0, 0, 0, 80, 0, 0]
        );
        assert_eq!(key_bytes(&Key::Mark(1)), 1u32.to_ne_bytes());
    }

    #[test]
    fn a_batch_is_begin_messages_end_and_its_last_message_is_acked() {
        let mut b = Batch::new(100);
        b.flush_chain(Table::Nat, "s1");
        b.rule(
            Table::Nat,
            "s1",
            &[Expr::Numgen {
                dreg: NFT_REG_1,
                modulus: 9,
                random: false,
                offset: 0x3000_0010,
            }],
        );
        assert_eq!(b.messages, 2);
        let (buf, last) = b.finish();
        assert_eq!(last, 102);
        // Walk the four messages: types, flags, sequence numbers.
        let mut at = 0;
        let mut seen = Vec::new();
        while at < buf.len() {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
            let ty = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
            let flags = u16::from_ne_bytes([buf[at + 6], buf[at + 7]]);
            let seq = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().unwrap());
            seen.push((ty, flags, seq));
            at += len.next_multiple_of(4);
        }
        assert_eq!(
            seen,
            [
                (16, 0x1, 100),
                (10 << 8 | 8, 0x1, 101),
                (10 << 8 | 6, 0xc05, 102),
                (17, 0x1, 103)
            ]
        );
    }
}
