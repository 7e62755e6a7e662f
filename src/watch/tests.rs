//! The protocols' handling of what a service really sends when it misbehaves: garbage, an
//! error status, a reply cut short, silence; and that the next ask reconnects. The service
//! side is a byte script on an in-memory pipe: these test kbz's client code, not a service.

use super::dial::{Dial, Io};
use super::http::Http;
use super::resp::Resp;
use proptest::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the service does on one connection, once it has read the request.
#[derive(Clone, Debug)]
enum Answer {
    /// Writes these bytes, then closes.
    Close(Vec<u8>),
    /// Writes these bytes, then holds the connection open and says nothing more.
    Hold(Vec<u8>),
}

/// A dial whose n-th connection answers `answers[n]` (the last one from then on); counts the
/// connections.
fn scripted(answers: Vec<Answer>) -> (Dial, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let opened = count.clone();
    let dial = Dial::with("svc:1", move || {
        let n = opened.fetch_add(1, Ordering::SeqCst);
        let answer = answers[n.min(answers.len() - 1)].clone();
        Box::pin(async move {
            let (client, mut server) = tokio::io::duplex(1 << 16);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if server.read(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
                match answer {
                    Answer::Close(bytes) => {
                        let _ = server.write_all(&bytes).await;
                    }
                    Answer::Hold(bytes) => {
                        let _ = server.write_all(&bytes).await;
                        // Read (and ignore) whatever comes, until the client gives up.
                        while server.read(&mut buf).await.unwrap_or(0) > 0 {}
                    }
                }
            });
            Ok(Box::new(client) as Box<dyn Io>)
        })
    });
    (dial, count)
}

const OK_200: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const ASK: Duration = Duration::from_millis(300);

#[tokio::test]
async fn http_a_503_is_an_answer_with_its_status() {
    let body = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nnope!".to_vec();
    let (dial, _) = scripted(vec![Answer::Hold(body)]);
    let r = Http::over(dial).get("/patroni", ASK).await.unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "nope!");
}

#[tokio::test]
async fn http_garbage_silence_and_a_cut_body_are_errors_that_say_where_then_it_reconnects() {
    let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"members\":".to_vec();
    let (dial, count) = scripted(vec![
        Answer::Close(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()),
        Answer::Hold(Vec::new()),
        Answer::Close(cut),
        Answer::Hold(OK_200.to_vec()),
    ]);
    let mut http = Http::over(dial);
    let garbage = http.get("/cluster", ASK).await.unwrap_err();
    assert!(garbage.starts_with("svc:1/cluster: "), "{garbage}");
    let started = Instant::now();
    let silent = http.get("/cluster", ASK).await.unwrap_err();
    assert_eq!(silent, "svc:1/cluster: no answer within 0.3 s");
    assert!(started.elapsed() < ASK * 3);
    let cut = http.get("/cluster", ASK).await.unwrap_err();
    assert!(cut.contains("body"), "{cut}");
    // Each failure dropped its stream: the next ask opened a new one, and this one works.
    let r = http.get("/cluster", ASK).await.unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(count.load(Ordering::SeqCst), 4);
    // Kept alive: the next ask uses the same stream.
    let r = http.get("/cluster", ASK).await;
    assert!(r.is_err(), "the script answers once per stream");
    assert_eq!(count.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn resp_an_error_reply_is_the_server_s_text_garbage_and_silence_are_errors() {
    let (dial, count) = scripted(vec![
        Answer::Hold(b"-ERR unknown command 'SENTINEL'\r\n".to_vec()),
        Answer::Close(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
        Answer::Hold(Vec::new()),
        Answer::Hold(b"*2\r\n$4\r\nname\r\n$8\r\nmymaster\r\n".to_vec()),
    ]);
    let mut resp = Resp::over(dial, None);
    let cmd = redis::cmd("SENTINEL");
    assert_eq!(
        resp.text(&cmd, ASK).await.unwrap(),
        "ERR unknown command 'SENTINEL'"
    );
    // An error reply is an answer: the stream is kept (and the script, which answers once
    // per stream, now keeps it silent).
    let silent = resp.text(&cmd, ASK).await.unwrap_err();
    assert_eq!(silent, "svc:1: no answer within 0.3 s");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let garbage = resp.text(&cmd, ASK).await.unwrap_err();
    assert!(garbage.starts_with("svc:1: "), "{garbage}");
    let silent = resp.text(&cmd, ASK).await.unwrap_err();
    assert_eq!(silent, "svc:1: no answer within 0.3 s");
    assert_eq!(resp.text(&cmd, ASK).await.unwrap(), "name\nmymaster");
    assert_eq!(count.load(Ordering::SeqCst), 4);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    /// Whatever a service sends, an ask ends within its limit, without a panic, and what it
    /// calls a response has a real status.
    #[test]
    fn http_any_bytes_end_within_the_limit(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        prefix in prop_oneof![Just(&b""[..]), Just(&b"HTTP/1.1 200 OK\r\n"[..]), Just(&b"HTTP/1.0 503 x\r\nContent-Length: 3\r\n"[..])],
        hold in any::<bool>(),
    ) {
        let mut all = prefix.to_vec();
        all.extend(bytes);
        let answer = if hold { Answer::Hold(all) } else { Answer::Close(all) };
        let (dial, _) = scripted(vec![answer]);
        let r = runtime().block_on(async {
            tokio::time::timeout(ASK * 3, Http::over(dial).get("/", ASK)).await
        });
        let r = r.expect("the ask outlived its limit");
        if let Ok(resp) = r {
            prop_assert!((100..1000).contains(&resp.status));
        }
    }

    #[test]
    fn resp_any_bytes_end_within_the_limit(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        prefix in prop_oneof![Just(&b""[..]), Just(&b"*3\r\n"[..]), Just(&b"$5\r\n"[..]), Just(&b"-"[..])],
        hold in any::<bool>(),
    ) {
        let mut all = prefix.to_vec();
        all.extend(bytes);
        let answer = if hold { Answer::Hold(all) } else { Answer::Close(all) };
        let (dial, _) = scripted(vec![answer]);
        let r = runtime().block_on(async {
            let mut resp = Resp::over(dial, None);
            tokio::time::timeout(ASK * 3, resp.text(&redis::cmd("PING"), ASK)).await
        });
        prop_assert!(r.is_ok(), "the ask outlived its limit");
    }

    /// Sections of a reading are the replies as redis-cli prints them: a list of strings
    /// without line ends reads back as the same list.
    #[test]
    fn resp_render_keeps_a_list_of_lines(items in proptest::collection::vec("[ -~]{1,12}", 0..20)) {
        let v = redis::Value::Array(
            items.iter().map(|s| redis::Value::BulkString(s.clone().into_bytes())).collect(),
        );
        let text = super::resp::render(&v);
        let back: Vec<&str> = if items.is_empty() { vec![] } else { text.split('\n').collect() };
        prop_assert_eq!(back, items.iter().map(String::as_str).collect::<Vec<_>>());
    }
}
