//! Calls from the edge to a media node ([`Effect::CloseOnNode`], [`Effect::RecordOnNode`]) as data:
//! the URL, token and body of each, how long one try may take, how often and how soon to try
//! again, what an answer's status means, and which input a recording call's answer becomes.
//! [`send`] runs that policy over the host's own HTTP client and timer, so both hosts behave the
//! same (a node that hangs costs at most [`ATTEMPTS`] x [`TIMEOUT`] plus the pauses).
//!
//! [`Effect::CloseOnNode`]: crate::Effect::CloseOnNode
//! [`Effect::RecordOnNode`]: crate::Effect::RecordOnNode

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use edgemeet_protocol::ParticipantId;
use edgemeet_protocol::node::StartRecordingResponse;
use serde_json::json;

use crate::{Input, LivestreamCall, NodeInfo, NodeScope, RecordStart, StatusToken};

/// How long one try may take, answer body included.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Tries per call.
pub const ATTEMPTS: u32 = 3;

/// The pause after failed try `attempt` (0-based): 250 ms, 500 ms, 1 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 << attempt)
}

/// One POST to a node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeCall {
    pub url: String,
    /// Signed by the edge for the node: sent as `Authorization: Bearer`. Never logged.
    pub token: String,
    /// A JSON body (`content-type: application/json`), if any.
    pub body: Option<String>,
}

/// Where the edge reaches a node by default: its public URL.
pub fn base(node: &NodeInfo) -> &str {
    node.url.trim_end_matches('/')
}

/// Close a participant's sessions or a whole meeting on the node. Its answer changes nothing:
/// hosts send it in the background (the node reaps idle sessions if it never arrives).
pub fn close(base: &str, meeting_id: &str, scope: &NodeScope, token: String) -> NodeCall {
    let url = match scope {
        NodeScope::Participant(pid) => format!("{base}/v1/participants/{pid}/close"),
        NodeScope::Meeting => format!("{base}/v1/rooms/{meeting_id}/close"),
    };
    NodeCall {
        url,
        token,
        body: None,
    }
}

/// Start (with the recorder's Dropbox grant) or stop a meeting's recording.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordCall {
    pub call: NodeCall,
    pub meeting_id: String,
    /// Who started it (a start only): the answer's status token is for them.
    pub recorder: Option<ParticipantId>,
}

pub fn record(
    base: &str,
    meeting_id: String,
    token: String,
    start: Option<RecordStart>,
) -> RecordCall {
    let recorder = start.as_ref().map(|s| s.recorder.clone());
    let (url, body) = match start {
        Some(start) => (
            format!("{base}/v1/rooms/{meeting_id}/recording/start"),
            Some({
                let mut body = match (start.dropbox, start.continue_from) {
                    (Some(grant), _) => json!({ "dropbox": grant }),
                    (None, Some(old)) => json!({ "continueFrom": old }),
                    (None, None) => json!({}),
                };
                if let Some(scene) = start.scene {
                    body["composite"] = json!(true);
                    body["scene"] = json!(scene);
                }
                if !start.per_person {
                    body["perPerson"] = json!(false);
                }
                body.to_string()
            }),
        ),
        None => (format!("{base}/v1/rooms/{meeting_id}/recording/stop"), None),
    };
    RecordCall {
        call: NodeCall { url, token, body },
        meeting_id,
        recorder,
    }
}

impl RecordCall {
    pub fn starting(&self) -> bool {
        self.recorder.is_some()
    }

    /// What the room hears of the node's answer: a start that failed, or the recorder's
    /// delivery-status token from a start's answer (`StartRecordingResponse::status_token`).
    /// A stop's answer, and a start's without a token, tell the room nothing.
    pub fn into_input(self, answer: &Result<Vec<u8>, Failure>) -> Option<Input> {
        let recorder = self.recorder?;
        let meeting_id = self.meeting_id;
        let body = match answer {
            Ok(body) => body,
            // A composite recording the node has no composer for: the room finds one.
            Err(Failure::Refused(429)) => {
                return Some(Input::NoComposer {
                    meeting_id,
                    livestream: false,
                });
            }
            Err(_) => return Some(Input::RecordingFailed { meeting_id }),
        };
        let answer = serde_json::from_slice::<StartRecordingResponse>(body).ok()?;
        let token = answer.status_token?;
        Some(Input::RecordingStarted {
            meeting_id,
            recorder,
            status_token: StatusToken(token),
            recording_id: Some(answer.recording_id),
        })
    }
}

/// Start, re-scene or stop a meeting's livestream.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveCall {
    pub call: NodeCall,
    pub meeting_id: String,
    starting: bool,
}

pub fn livestream(base: &str, meeting_id: String, token: String, live: LivestreamCall) -> LiveCall {
    let starting = matches!(live, LivestreamCall::Start { .. });
    let (what, body) = match live {
        LivestreamCall::Start {
            url,
            stream_key,
            scene,
        } => (
            "livestream/start",
            Some(json!({ "url": url, "streamKey": stream_key, "scene": scene }).to_string()),
        ),
        LivestreamCall::Scene(scene) => (
            "composition/scene",
            Some(serde_json::to_string(&scene).unwrap_or_default()),
        ),
        LivestreamCall::Stop => ("livestream/stop", None),
    };
    LiveCall {
        call: NodeCall {
            url: format!("{base}/v1/rooms/{meeting_id}/{what}"),
            token,
            body,
        },
        meeting_id,
        starting,
    }
}

impl LiveCall {
    /// A start the node refused for lack of a composer (429) moves the room to a node with one;
    /// any other failed start ends the stream (the room tells everyone); nothing else matters.
    pub fn into_input(self, answer: &Result<Vec<u8>, Failure>) -> Option<Input> {
        let meeting_id = self.meeting_id;
        match answer {
            Err(Failure::Refused(429)) if self.starting => Some(Input::NoComposer {
                meeting_id,
                livestream: true,
            }),
            Err(_) if self.starting => Some(Input::LivestreamFailed { meeting_id }),
            _ => None,
        }
    }
}

/// A room's call whose order matters (a recording's or livestream's start before its stop):
/// hosts send them one after another and hand each answer back to the room.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderedCall {
    Record(RecordCall),
    Live(LiveCall),
}

impl OrderedCall {
    pub fn call(&self) -> &NodeCall {
        match self {
            Self::Record(r) => &r.call,
            Self::Live(l) => &l.call,
        }
    }

    pub fn into_input(self, answer: &Result<Vec<u8>, Failure>) -> Option<Input> {
        match self {
            Self::Record(r) => r.into_input(answer),
            Self::Live(l) => l.into_input(answer),
        }
    }

    /// What it is about, for a log line: `recording start`, `livestream`, ...
    pub fn what(&self) -> &'static str {
        match self {
            Self::Record(r) if r.starting() => "recording start",
            Self::Record(_) => "recording stop",
            Self::Live(l) if l.starting => "livestream start",
            Self::Live(_) => "livestream",
        }
    }

    /// A recording's stop: once it succeeded, the recording's files wait for the uploader.
    pub fn stops_recording(&self) -> bool {
        matches!(self, Self::Record(r) if !r.starting())
    }
}

/// Why a call gave up.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The node understood and said no (4xx other than 404): trying again will not change it.
    Refused(u16),
    /// The last try failed with this status (5xx, or anything else not a success).
    Failed(u16),
    /// The last try did not reach the node (the host's error text, without the URL).
    Unreachable(String),
    /// The last try took longer than [`TIMEOUT`].
    TimedOut,
}

/// What one try's outcome means.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The call is done: the answer's body (empty for a 404: nothing there to act on).
    Done(Vec<u8>),
    Stop(Failure),
    Retry(Failure),
}

/// Judge one try: `Ok((status, body))` when the node answered, `Err(text)` when it was not reached.
pub fn judge(answer: Result<(u16, Vec<u8>), String>) -> Step {
    match answer {
        Ok((404, _)) => Step::Done(Vec::new()),
        Ok((status, body)) if (200..300).contains(&status) => Step::Done(body),
        Ok((status, _)) if (400..500).contains(&status) => Step::Stop(Failure::Refused(status)),
        Ok((status, _)) => Step::Retry(Failure::Failed(status)),
        Err(e) => Step::Retry(Failure::Unreachable(e)),
    }
}

/// Make `call` by the policy above. `post` is one try on the host's HTTP client (status and the
/// whole body, or the error's text); `sleep` the host's timer. A host's answer body that cannot
/// be read counts as an empty one (a node's answers are small).
pub async fn send<'a, P, PF, S, SF>(
    call: &'a NodeCall,
    mut post: P,
    mut sleep: S,
) -> Result<Vec<u8>, Failure>
where
    P: FnMut(&'a NodeCall) -> PF,
    PF: Future<Output = Result<(u16, Vec<u8>), String>>,
    S: FnMut(Duration) -> SF,
    SF: Future<Output = ()>,
{
    let mut last = Failure::TimedOut;
    for attempt in 0..ATTEMPTS {
        let step = match within(sleep(TIMEOUT), post(call)).await {
            Some(answer) => judge(answer),
            None => Step::Retry(Failure::TimedOut),
        };
        match step {
            Step::Done(body) => return Ok(body),
            Step::Stop(failure) => return Err(failure),
            Step::Retry(failure) => last = failure,
        }
        if attempt + 1 < ATTEMPTS {
            sleep(backoff(attempt)).await;
        }
    }
    Err(last)
}

/// How long the edge waits for a node's `GET /healthz` when a page reported the node.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1000);
/// Tries of that check (a refused connection fails at once; a lost packet gets one more chance).
pub const PROBE_ATTEMPTS: u32 = 2;

/// The URL the edge checks a node at: its health endpoint (no auth, no side effect).
pub fn probe_url(base: &str) -> String {
    format!("{base}/healthz")
}

/// Check a node the way both hosts do: alive when one of [`PROBE_ATTEMPTS`] `GET /healthz` tries
/// answers 2xx within [`PROBE_TIMEOUT`]. `get` is one try (the status, or the error's text).
pub async fn probe<G, GF, S, SF>(mut get: G, mut sleep: S) -> bool
where
    G: FnMut() -> GF,
    GF: Future<Output = Result<u16, String>>,
    S: FnMut(Duration) -> SF,
    SF: Future<Output = ()>,
{
    for attempt in 0..PROBE_ATTEMPTS {
        if let Some(Ok(status)) = within(sleep(PROBE_TIMEOUT), get()).await
            && (200..300).contains(&status)
        {
            return true;
        }
        if attempt + 1 < PROBE_ATTEMPTS {
            sleep(backoff(0)).await;
        }
    }
    false
}

/// `work`'s output, or `None` when `limit` finishes first.
async fn within<T>(limit: impl Future<Output = ()>, work: impl Future<Output = T>) -> Option<T> {
    let (mut limit, mut work) = (pin!(limit), pin!(work));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        match limit.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::pin::Pin;
    use std::task::{Context, Waker};

    /// Runs a future whose parts are all ready or never ready (the fakes below).
    fn run<T>(f: impl Future<Output = T>) -> T {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the fakes never wait"),
        }
    }

    type Answer = Option<Result<(u16, Vec<u8>), String>>;

    /// A node that gives these answers in turn (`None`: it never answers) and a timer that
    /// records each sleep and ends at once.
    fn call_with(answers: Vec<Answer>) -> (Result<Vec<u8>, Failure>, usize, Vec<Duration>) {
        let answers = RefCell::new(answers.into_iter());
        let (tries, sleeps) = (RefCell::new(0), RefCell::new(Vec::new()));
        let call = close("http://n", "m1", &NodeScope::Meeting, "t".into());
        let out = run(send(
            &call,
            |_| {
                *tries.borrow_mut() += 1;
                let next = answers.borrow_mut().next().expect("no more tries expected");
                Box::pin(async move {
                    match next {
                        Some(a) => a,
                        None => std::future::pending().await,
                    }
                }) as Pin<Box<dyn Future<Output = _>>>
            },
            |d| {
                sleeps.borrow_mut().push(d);
                std::future::ready(())
            },
        ));
        (out, tries.into_inner(), sleeps.into_inner())
    }

    #[test]
    fn what_an_answer_means() {
        let (out, tries, _) = call_with(vec![Some(Ok((200, b"{}".to_vec())))]);
        assert_eq!((out, tries), (Ok(b"{}".to_vec()), 1));
        let (out, tries, _) = call_with(vec![Some(Ok((404, b"gone".to_vec())))]);
        assert_eq!(
            (out, tries),
            (Ok(Vec::new()), 1),
            "a 404 has nothing left to close"
        );
        let (out, tries, _) = call_with(vec![Some(Ok((403, Vec::new())))]);
        assert_eq!(
            (out, tries),
            (Err(Failure::Refused(403)), 1),
            "a refusal is final"
        );
        let (out, tries, sleeps) = call_with(vec![
            Some(Ok((503, Vec::new()))),
            Some(Err("connection refused".into())),
            Some(Ok((204, Vec::new()))),
        ]);
        assert_eq!((out, tries), (Ok(Vec::new()), 3));
        assert!(sleeps.contains(&backoff(0)) && sleeps.contains(&backoff(1)));
        let (out, tries, _) = call_with(vec![Some(Ok((500, Vec::new()))); 3]);
        assert_eq!((out, tries), (Err(Failure::Failed(500)), 3));
    }

    #[test]
    fn a_node_that_never_answers_times_out_on_every_try() {
        let (out, tries, sleeps) = call_with(vec![None, None, None]);
        assert_eq!((out, tries), (Err(Failure::TimedOut), ATTEMPTS as usize));
        assert_eq!(sleeps.iter().filter(|d| **d == TIMEOUT).count(), 3);
        let (out, _, _) = call_with(vec![None, Some(Ok((200, b"x".to_vec())))]);
        assert_eq!(out, Ok(b"x".to_vec()));
    }

    fn node() -> NodeInfo {
        NodeInfo {
            id: "n1".into(),
            url: "https://n1.example/".into(),
            region: "eu".into(),
        }
    }

    #[test]
    fn urls_and_bodies() {
        let n = node();
        let b = base(&n);
        assert_eq!(b, "https://n1.example");
        let c = close(b, "m1", &NodeScope::Participant("p1".into()), "t".into());
        assert_eq!(
            (c.url.as_str(), c.body),
            ("https://n1.example/v1/participants/p1/close", None)
        );
        assert_eq!(
            close(b, "m1", &NodeScope::Meeting, "t".into()).url,
            "https://n1.example/v1/rooms/m1/close"
        );
        let start = RecordStart {
            dropbox: None,
            recorder: "p1".into(),
            continue_from: None,
            scene: None,
            per_person: true,
        };
        let r = record(b, "m1".into(), "t".into(), Some(start.clone()));
        assert_eq!(r.call.url, "https://n1.example/v1/rooms/m1/recording/start");
        assert_eq!(r.call.body.as_deref(), Some("{}"));
        // Only the composed video.
        let only = RecordStart {
            scene: Some(Default::default()),
            per_person: false,
            ..start
        };
        let body: serde_json::Value = serde_json::from_str(
            record(b, "m1".into(), "t".into(), Some(only))
                .call
                .body
                .as_deref()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (&body["composite"], &body["perPerson"]),
            (&json!(true), &json!(false))
        );
        let stop = record(b, "m1".into(), "t".into(), None);
        assert_eq!(
            (stop.call.url.as_str(), stop.call.body.as_deref()),
            ("https://n1.example/v1/rooms/m1/recording/stop", None)
        );
    }

    #[test]
    fn what_a_recording_answer_tells_the_room() {
        let start = || {
            record(
                "b",
                "m1".into(),
                "t".into(),
                Some(RecordStart {
                    dropbox: None,
                    recorder: "p1".into(),
                    continue_from: None,
                    scene: None,
                    per_person: true,
                }),
            )
        };
        let answer = br#"{"recordingId":"r","startedAtMs":1,"statusToken":"00112233445566778899aabbccddeeff"}"#;
        assert_eq!(
            start().into_input(&Ok(answer.to_vec())),
            Some(Input::RecordingStarted {
                meeting_id: "m1".into(),
                recorder: "p1".into(),
                status_token: StatusToken("00112233445566778899aabbccddeeff".into()),
                recording_id: Some("r".into()),
            })
        );
        assert_eq!(
            start().into_input(&Ok(br#"{"recordingId":"r","startedAtMs":1}"#.to_vec())),
            None
        );
        assert_eq!(start().into_input(&Ok(Vec::new())), None);
        assert_eq!(
            start().into_input(&Err(Failure::TimedOut)),
            Some(Input::RecordingFailed {
                meeting_id: "m1".into()
            })
        );
        let stop = || record("b", "m1".into(), "t".into(), None);
        assert_eq!(stop().into_input(&Err(Failure::Refused(409))), None);
        assert_eq!(stop().into_input(&Ok(Vec::new())), None);
    }

    #[test]
    fn livestream_calls_and_what_their_answers_tell_the_room() {
        use edgemeet_protocol::client::StreamKey;
        use edgemeet_protocol::node::CompositionScene;
        let start = || {
            livestream(
                "https://n1.example",
                "m1".into(),
                "t".into(),
                LivestreamCall::Start {
                    url: "rtmp://ingest.example/live".into(),
                    stream_key: StreamKey("k-123".into()),
                    scene: CompositionScene::default(),
                },
            )
        };
        let s = start();
        assert_eq!(
            s.call.url,
            "https://n1.example/v1/rooms/m1/livestream/start"
        );
        let body: serde_json::Value =
            serde_json::from_str(s.call.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["streamKey"], "k-123");
        assert_eq!(body["url"], "rtmp://ingest.example/live");
        assert!(
            !format!(
                "{:?}",
                LivestreamCall::Start {
                    url: String::new(),
                    stream_key: StreamKey("k-123".into()),
                    scene: CompositionScene::default(),
                }
            )
            .contains("k-123")
        );
        assert_eq!(
            start().into_input(&Err(Failure::Refused(503))),
            Some(Input::LivestreamFailed {
                meeting_id: "m1".into()
            })
        );
        // The node runs as many compositions as it may: the room looks for another node.
        assert_eq!(
            start().into_input(&Err(Failure::Refused(429))),
            Some(Input::NoComposer {
                meeting_id: "m1".into(),
                livestream: true,
            })
        );
        assert_eq!(start().into_input(&Ok(Vec::new())), None);
        let scene = livestream(
            "b",
            "m1".into(),
            "t".into(),
            LivestreamCall::Scene(CompositionScene::default()),
        );
        assert_eq!(scene.call.url, "b/v1/rooms/m1/composition/scene");
        assert_eq!(scene.into_input(&Err(Failure::TimedOut)), None);
        let stop = livestream("b", "m1".into(), "t".into(), LivestreamCall::Stop);
        assert_eq!(
            (stop.call.url.as_str(), stop.call.body.as_deref()),
            ("b/v1/rooms/m1/livestream/stop", None)
        );
    }
}
