//! DNS check messages (hickory-proto): the query (RD set, like Seesaw) and the verdict on the
//! response: it must answer our id and question with NOERROR and carry a record of the queried
//! name, class IN and type that matches the expected answer.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use crate::check::DnsExpect;

/// Why a response does not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsCheckError {
    /// The query could not be encoded (a name too long for the wire).
    #[error("cannot encode dns query: {0}")]
    Encode(String),
    /// Not a DNS message.
    #[error("malformed dns response: {0}")]
    Malformed(String),
    /// A query, or an answer to some other query.
    #[error("dns message is not a response to our query")]
    NotOurResponse,
    /// RCODE other than NOERROR.
    #[error("dns rcode {0}")]
    Rcode(String),
    /// NOERROR with no answer of the queried name, class and type.
    #[error("no {0} answer")]
    NoAnswer(RecordType),
    /// Answers of the right type, none equal to the expected one.
    #[error("no {qtype} answer equals {want} (got {got})")]
    Mismatch {
        /// Queried type.
        qtype: RecordType,
        /// What was expected.
        want: String,
        /// What came back (first answers).
        got: String,
    },
}

/// Encodes the query.
pub fn encode_query(id: u16, name: &Name, qtype: RecordType) -> Result<Vec<u8>, DnsCheckError> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name.clone(), qtype));
    m.to_vec().map_err(|e| DnsCheckError::Encode(e.to_string()))
}

/// Judges a response to query `id` for `name`/`qtype`. Returns the matching answer, rendered.
pub fn check_response(
    buf: &[u8],
    id: u16,
    name: &Name,
    qtype: RecordType,
    expect: Option<&DnsExpect>,
) -> Result<String, DnsCheckError> {
    let m = Message::from_vec(buf).map_err(|e| DnsCheckError::Malformed(e.to_string()))?;
    let question_ok = m.queries.len() == 1
        && m.queries.first().is_some_and(
            |q| { q.name().eq_case(name) || q.name() == name } && q.query_type() == qtype,
        );
    if m.metadata.id != id
        || m.metadata.message_type != MessageType::Response
        || m.metadata.op_code != OpCode::Query
        || !question_ok
    {
        return Err(DnsCheckError::NotOurResponse);
    }
    if m.metadata.response_code != ResponseCode::NoError {
        return Err(DnsCheckError::Rcode(m.metadata.response_code.to_string()));
    }
    let answers: Vec<&RData> = m
        .answers
        .iter()
        .filter(|r| r.name == *name && r.dns_class == DNSClass::IN && r.record_type() == qtype)
        .map(|r| &r.data)
        .collect();
    if answers.is_empty() {
        return Err(DnsCheckError::NoAnswer(qtype));
    }
    let Some(want) = expect else {
        return Ok(render(answers[0]));
    };
    if let Some(hit) = answers.iter().find(|a| matches(a, want)) {
        return Ok(render(hit));
    }
    let got: Vec<String> = answers.iter().take(3).map(|a| render(a)).collect();
    Err(DnsCheckError::Mismatch {
        qtype,
        want: match want {
            DnsExpect::Addr(ip) => ip.to_string(),
            DnsExpect::Name(n) => n.to_string(),
            DnsExpect::Text(t) => t.clone(),
        },
        got: got.join(", "),
    })
}

/// The expected answer for `qtype`, from the check's `receive`.
pub fn parse_expect(qtype: RecordType, receive: &str) -> Result<Option<DnsExpect>, String> {
    if receive.is_empty() {
        return Ok(None);
    }
    match qtype {
        RecordType::A | RecordType::AAAA => {
            let ip: IpAddr = receive
                .parse()
                .map_err(|_| format!("dns expected answer {receive:?} is not an address"))?;
            if ip.is_ipv4() != (qtype == RecordType::A) {
                return Err(format!(
                    "dns expected answer {receive} does not fit type {qtype}"
                ));
            }
            Ok(Some(DnsExpect::Addr(ip)))
        }
        RecordType::CNAME | RecordType::NS | RecordType::PTR => fqdn(receive)
            .map(|n| Some(DnsExpect::Name(n)))
            .map_err(|e| format!("dns expected answer {receive:?}: {e}")),
        _ => Ok(Some(DnsExpect::Text(receive.to_owned()))),
    }
}

/// Parses a name and makes it fully qualified (Seesaw appends the trailing dot).
pub fn fqdn(s: &str) -> Result<Name, String> {
    let mut n: Name = s.parse().map_err(|e| format!("invalid dns name: {e}"))?;
    n.set_fqdn(true);
    Ok(n)
}

fn matches(a: &RData, want: &DnsExpect) -> bool {
    match (a, want) {
        (RData::A(a), DnsExpect::Addr(ip)) => IpAddr::V4(a.0) == *ip,
        (RData::AAAA(a), DnsExpect::Addr(ip)) => IpAddr::V6(a.0) == *ip,
        (RData::CNAME(n), DnsExpect::Name(w)) => n.0 == *w,
        (RData::NS(n), DnsExpect::Name(w)) => n.0 == *w,
        (RData::PTR(n), DnsExpect::Name(w)) => n.0 == *w,
        (_, DnsExpect::Text(t)) => render(a) == *t,
        _ => false,
    }
}

fn render(a: &RData) -> String {
    let s = match a {
        RData::TXT(t) => t
            .txt_data
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect::<String>(),
        other => other.to_string(),
    };
    s.chars().take(128).collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, CNAME, TXT};

    use super::*;

    fn name() -> Name {
        fqdn("www.example.test").unwrap()
    }

    fn response(id: u16, qtype: RecordType, answers: Vec<Record>) -> Message {
        let mut m = Message::new(id, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(name(), qtype));
        m.add_answers(answers);
        m
    }

    fn a(ip: [u8; 4]) -> Record {
        Record::from_rdata(name(), 60, RData::A(A(Ipv4Addr::from(ip))))
    }

    fn check(m: &Message, qtype: RecordType, receive: &str) -> Result<String, DnsCheckError> {
        let e = parse_expect(qtype, receive).unwrap();
        check_response(&m.to_vec().unwrap(), 7, &name(), qtype, e.as_ref())
    }

    #[test]
    fn query_has_rd_and_one_question() {
        let q = encode_query(7, &name(), RecordType::AAAA).unwrap();
        let m = Message::from_vec(&q).unwrap();
        assert!(m.metadata.recursion_desired);
        assert_eq!(m.metadata.id, 7);
        assert_eq!(m.queries[0].query_type(), RecordType::AAAA);
        assert_eq!(m.queries[0].name(), &name());
    }

    #[test]
    fn address_answers() {
        let m = response(7, RecordType::A, vec![a([10, 0, 0, 1]), a([127, 0, 0, 5])]);
        assert_eq!(check(&m, RecordType::A, "127.0.0.5").unwrap(), "127.0.0.5");
        assert_eq!(check(&m, RecordType::A, "").unwrap(), "10.0.0.1");
        assert!(matches!(
            check(&m, RecordType::A, "127.0.0.6"),
            Err(DnsCheckError::Mismatch { .. })
        ));
        // The answer must be for the queried name.
        let mut other = response(7, RecordType::A, vec![]);
        other.add_answer(Record::from_rdata(
            fqdn("x.test").unwrap(),
            1,
            RData::A(A(Ipv4Addr::LOCALHOST)),
        ));
        assert_eq!(
            check(&other, RecordType::A, "127.0.0.1"),
            Err(DnsCheckError::NoAnswer(RecordType::A))
        );
    }

    #[test]
    fn name_and_text_answers() {
        let target = fqdn("real.example.test").unwrap();
        let m = response(
            7,
            RecordType::CNAME,
            vec![Record::from_rdata(name(), 1, RData::CNAME(CNAME(target)))],
        );
        assert!(check(&m, RecordType::CNAME, "REAL.example.test").is_ok());
        assert!(check(&m, RecordType::CNAME, "other.example.test.").is_err());
        let t = response(
            7,
            RecordType::TXT,
            vec![Record::from_rdata(
                name(),
                1,
                RData::TXT(TXT::new(vec!["v=ok".into()])),
            )],
        );
        assert_eq!(check(&t, RecordType::TXT, "v=ok").unwrap(), "v=ok");
        assert!(check(&t, RecordType::TXT, "v=no").is_err());
    }

    #[test]
    fn errors_and_foreign_messages() {
        let mut nx = response(7, RecordType::A, vec![]);
        nx.metadata.response_code = ResponseCode::NXDomain;
        assert!(matches!(
            check(&nx, RecordType::A, ""),
            Err(DnsCheckError::Rcode(_))
        ));
        let wrong_id = response(8, RecordType::A, vec![a([1, 1, 1, 1])]);
        assert_eq!(
            check(&wrong_id, RecordType::A, ""),
            Err(DnsCheckError::NotOurResponse)
        );
        let wrong_q = response(7, RecordType::AAAA, vec![a([1, 1, 1, 1])]);
        assert_eq!(
            check(&wrong_q, RecordType::A, ""),
            Err(DnsCheckError::NotOurResponse)
        );
        let mut query = response(7, RecordType::A, vec![a([1, 1, 1, 1])]);
        query.metadata.message_type = MessageType::Query;
        assert_eq!(
            check(&query, RecordType::A, ""),
            Err(DnsCheckError::NotOurResponse)
        );
        let e = parse_expect(RecordType::A, "").unwrap();
        for junk in [&b""[..], b"\x00\x07", &[0xff; 512]] {
            assert!(check_response(junk, 7, &name(), RecordType::A, e.as_ref()).is_err());
        }
    }

    #[test]
    fn expectations_are_validated() {
        assert!(parse_expect(RecordType::A, "::1").is_err());
        assert!(parse_expect(RecordType::AAAA, "127.0.0.1").is_err());
        assert!(parse_expect(RecordType::A, "host").is_err());
        assert_eq!(parse_expect(RecordType::A, "").unwrap(), None);
        assert_eq!(fqdn("a.b").unwrap().to_string(), "a.b.");
        assert!(fqdn(&"x".repeat(70)).is_err());
    }
}
