#![no_main]
//! Datagrams on the node's UDP ports that look like STUN: the shared port's routing by the ICE
//! username (`stun_local_ufrag`), then the node's ICE agent (webrtc-rs `rtc-ice`, the patched copy
//! the node links) reading them: raw bytes from anyone, and binding requests, responses and
//! indications the fuzzer composes with the right credentials, as a peer that read the node's SDP
//! can, so the checks past MESSAGE-INTEGRITY are reached (role conflicts, nomination,
//! peer-reflexive candidates).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::BytesMut;
use edgemeet_media_node::inbound::stun_local_ufrag;
use libfuzzer_sys::fuzz_target;
use rtc::crypto::RTCCryptoProvider;
use rtc::crypto::providers::RingProvider;
use rtc::ice::agent::Agent;
use rtc::ice::agent::agent_config::AgentConfig;
use rtc::ice::attributes::control::{AttrControlled, AttrControlling};
use rtc::ice::attributes::priority::PriorityAttr;
use rtc::ice::attributes::use_candidate::UseCandidateAttr;
use rtc::ice::candidate::CandidateConfig;
use rtc::ice::candidate::candidate_host::CandidateHostConfig;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::stun::attributes::{ATTR_USERNAME, AttrType};
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_INDICATION, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, METHOD_BINDING,
    Message, MessageType, Setter, TransactionId,
};
use rtc::stun::textattrs::Username;

const NODE_UFRAG: &str = "nodeufrag";
const NODE_PWD: &str = "nodepwd-0123456789abcdef";
const PEER_UFRAG: &str = "peerufrag";
const PEER_PWD: &str = "peerpwd-0123456789abcdef";
const NODE_ADDR: &str = "127.0.0.1:40000";

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    controlling: bool,
    /// (milliseconds since the previous datagram, sender port, datagram)
    datagrams: Vec<(u8, u8, Datagram<'a>)>,
}

#[derive(Arbitrary, Debug)]
enum Datagram<'a> {
    Raw(&'a [u8]),
    Binding {
        class: u8,
        transaction: [u8; 12],
        /// `None`: the right one (`<node ufrag>:<peer ufrag>`).
        username: Option<&'a str>,
        use_candidate: bool,
        priority: Option<u32>,
        controlling: Option<u64>,
        controlled: Option<u64>,
        other: Vec<(u16, &'a [u8])>,
        /// Sign with the password the message class calls for (the node's for a request).
        sign: bool,
        fingerprint: bool,
    },
}

fn compose(d: &Datagram, crypto: &RingProvider) -> Option<Vec<u8>> {
    let Datagram::Binding {
        class,
        transaction,
        username,
        use_candidate,
        priority,
        controlling,
        controlled,
        other,
        sign,
        fingerprint,
    } = d
    else {
        unreachable!()
    };
    let class = [
        CLASS_REQUEST,
        CLASS_INDICATION,
        CLASS_SUCCESS_RESPONSE,
        CLASS_ERROR_RESPONSE,
    ][usize::from(class % 4)];
    let mut m = Message::new();
    m.set_type(MessageType::new(METHOD_BINDING, class));
    m.transaction_id = TransactionId(*transaction);
    m.write_header();
    let user = username.map_or_else(|| format!("{NODE_UFRAG}:{PEER_UFRAG}"), str::to_string);
    Username::new(ATTR_USERNAME, user).add_to(&mut m).ok()?;
    if *use_candidate {
        UseCandidateAttr::new().add_to(&mut m).ok()?;
    }
    if let Some(p) = priority {
        PriorityAttr(*p).add_to(&mut m).ok()?;
    }
    if let Some(t) = controlling {
        AttrControlling(*t).add_to(&mut m).ok()?;
    }
    if let Some(t) = controlled {
        AttrControlled(*t).add_to(&mut m).ok()?;
    }
    for (t, v) in other.iter().take(8) {
        m.add(AttrType(*t), v);
    }
    if *sign {
        let pwd = if class == CLASS_REQUEST {
            NODE_PWD
        } else {
            PEER_PWD
        };
        MessageIntegrity::new_short_term_integrity_with_provider(pwd.into(), crypto.crypto())
            .add_to(&mut m)
            .ok()?;
    }
    if *fingerprint {
        FINGERPRINT.add_to(&mut m).ok()?;
    }
    Some(m.raw)
}

fuzz_target!(|input: Input| {
    let crypto = Arc::new(RingProvider::new());
    let config = AgentConfig {
        local_ufrag: NODE_UFRAG.into(),
        local_pwd: NODE_PWD.into(),
        multicast_dns_mode: MulticastDnsMode::Disabled,
        ..Default::default()
    };
    let mut now = Instant::now();
    let mut agent = Agent::new(now, Arc::new(config), crypto.clone()).unwrap();
    let local: SocketAddr = NODE_ADDR.parse().unwrap();
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".into(),
            address: local.ip().to_string(),
            port: local.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    agent
        .add_local_candidate(host.new_candidate_host().unwrap())
        .unwrap();
    agent
        .start_connectivity_checks(now, input.controlling, PEER_UFRAG.into(), PEER_PWD.into())
        .unwrap();

    for (gap, port, datagram) in input.datagrams.into_iter().take(32) {
        now += Duration::from_millis(u64::from(gap) * 4);
        let bytes = match &datagram {
            Datagram::Raw(b) => b.to_vec(),
            composed => match compose(composed, &crypto) {
                Some(b) => b,
                None => continue,
            },
        };
        // The shared port routes by the recipient's half of USERNAME.
        if let Some(ufrag) = stun_local_ufrag(&bytes) {
            assert!(!ufrag.contains(':'));
        }
        let peer = SocketAddr::new(local.ip(), 50_000 + u16::from(port % 4));
        let _ = agent.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: local,
                peer_addr: peer,
                transport_protocol: TransportProtocol::UDP,
                ecn: None,
            },
            message: BytesMut::from(&bytes[..]),
        });
        let _ = agent.handle_timeout(now);
        while agent.poll_write().is_some() {}
        while agent.poll_event().is_some() {}
    }
});
