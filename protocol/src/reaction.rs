//! Reactions: short-lived signs a participant sends to everyone. The edge relays them and keeps
//! nothing of them.

use serde::{Deserialize, Serialize};

/// The reactions there are (a fixed set: nothing typed travels this way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reaction {
    ThumbsUp,
    Applause,
    Laugh,
    Surprise,
    Heart,
    Celebrate,
}

#[cfg(test)]
mod tests {
    use crate::{ClientMessage, ErrorCode, parse_client};

    #[test]
    fn only_known_reactions_parse() {
        let m = parse_client(r#"{"v":1,"type":"react","reaction":"applause"}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::React {
                reaction: super::Reaction::Applause
            }
        );
        let err = parse_client(r#"{"v":1,"type":"react","reaction":"<b>hi</b>"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidMessage);
    }
}
