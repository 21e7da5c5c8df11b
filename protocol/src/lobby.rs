//! The lobby (knocking) and the roles: the types the lobby and role messages of [`crate::client`]
//! and [`crate::server`] carry.

use serde::{Deserialize, Serialize};

/// Someone waiting to be let in, as moderators see them: a knock id (random, valid while they
/// wait; not a participant id) and the name they typed. Nothing else of them is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Knocker {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Why the edge turned a knocking person away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefuseReason {
    /// A moderator refused them.
    Moderator,
    /// The meeting they knocked at ended (the last participant left).
    MeetingEnded,
}

#[cfg(test)]
mod tests {
    use crate::{ClientMessage, ServerMessage, encode_server, parse_client};

    #[test]
    fn lobby_and_role_messages_round_trip() {
        for text in [
            r#"{"v":1,"type":"set_lobby","enabled":true}"#,
            r#"{"v":1,"type":"admit","target":"k1"}"#,
            r#"{"v":1,"type":"admit_all"}"#,
            r#"{"v":1,"type":"refuse","target":"k1"}"#,
            r#"{"v":1,"type":"refuse_all"}"#,
            r#"{"v":1,"type":"set_moderator","target":"p1","moderator":false}"#,
            r#"{"v":1,"type":"end_meeting"}"#,
        ] {
            let msg = parse_client(text).unwrap();
            assert_eq!(parse_client(&msg.to_wire()).unwrap(), msg, "{text}");
        }
        let lobby = encode_server(&ServerMessage::Lobby {
            enabled: true,
            knocking: vec![super::Knocker {
                id: "k1".into(),
                name: Some("Ada".into()),
            }],
        });
        assert_eq!(
            lobby,
            r#"{"v":1,"type":"lobby","enabled":true,"knocking":[{"id":"k1","name":"Ada"}]}"#
        );
        let refused = encode_server(&ServerMessage::Refused {
            reason: super::RefuseReason::Moderator,
        });
        assert_eq!(refused, r#"{"v":1,"type":"refused","reason":"moderator"}"#);
    }

    #[test]
    fn malformed_lobby_messages_are_errors() {
        for text in [
            r#"{"v":1,"type":"set_lobby"}"#,
            r#"{"v":1,"type":"set_lobby","enabled":"yes"}"#,
            r#"{"v":1,"type":"admit"}"#,
            r#"{"v":1,"type":"refuse","target":5}"#,
            r#"{"v":1,"type":"set_moderator","target":"p1"}"#,
        ] {
            let err = parse_client(text).unwrap_err();
            assert_eq!(err.code, crate::ErrorCode::InvalidMessage, "{text}");
        }
        assert!(matches!(
            parse_client(r#"{"v":1,"type":"end_meeting"}"#),
            Ok(ClientMessage::EndMeeting)
        ));
    }
}
