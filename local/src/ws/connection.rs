//! One open connection, from the completed upgrade to its `$disconnect`: client frames go to
//! [`dispatch`], frames for the client come from the registry's queue, and whoever ends the
//! connection (client, idle or duration limit, `DELETE @connections`, frame limit, shutdown),
//! it leaves the registry before `$disconnect` runs.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::{MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, ROUTES_IN_FLIGHT, dispatch};
use crate::events::now_ms;
use crate::registry::{LiveConn, Outbound};
use crate::server::AppState;

/// How long a closing connection waits for the client's close frame (RFC 6455 §7.1.1 wants
/// the server to wait for it) before dropping the socket: a vanished client must not hold
/// the connection's `$disconnect` back.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// After a 1009 close, the socket is drained until it has been quiet this long, so the rest
/// of the oversized frame does not turn the close into a TCP reset that would hide the
/// close frame from the client.
const DRAIN_QUIET: Duration = Duration::from_millis(100);

/// How a connection ended.
enum Ending {
    /// The client closed (or vanished: 1006).
    Client { code: u16, reason: String },
    /// The emulator closes, for `cause`.
    Server {
        code: u16,
        reason: &'static str,
        cause: &'static str,
    },
    /// A frame or message over the limits.
    TooBig(WsError),
    /// The client stopped reading: its socket took no queued frame for the write-stall limit.
    Stalled,
}

type Io = TokioIo<hyper::upgrade::Upgraded>;

/// Bytes read from a client's socket at most per read. tungstenite zero-fills this much of its
/// read buffer before every read attempt, including the ones that find nothing, and a
/// connection's task attempts one each time it wakes to write fan-out frames: at its default,
/// 128 KiB, that zero-filling was 38 % of the server's CPU at 1,000 connections × 100 msg/s,
/// and it kept 128 KiB resident per connection; at 4 KiB it was still 4 %. Client frames are
/// a few hundred bytes; one at the 32 KB frame limit takes 32 reads.
const READ_CHUNK_BYTES: usize = 1024;

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_CHUNK_BYTES)
        .max_frame_size(Some(MAX_FRAME_BYTES))
        .max_message_size(Some(MAX_MESSAGE_BYTES))
}

/// One connection, from the completed upgrade to its `$disconnect`.
pub(super) async fn run(
    state: &Arc<AppState>,
    live: &LiveConn,
    mut rx: mpsc::Receiver<Outbound>,
    io: Io,
) {
    let id = live.meta.connection_id.as_str();
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config())).await;
    let in_flight = Arc::new(Semaphore::new(ROUTES_IN_FLIGHT));
    let idle_timeout = state.config.idle_timeout;
    let write_stall = state.config.write_stall;
    let idle = tokio::time::sleep(idle_timeout);
    let max = tokio::time::sleep(state.config.max_connection);
    tokio::pin!(idle, max);
    let mut shutdown = state.shutdown.subscribe();
    let already_shutting_down = *shutdown.borrow_and_update();
    // The futures for a kick and for shutdown live as long as the loop: each fires once and
    // ends it, and making them anew on every turn registered and removed a waiter on both
    // every time the connection woke to write (~4 % of the server's CPU under fan-out load).
    let kicked = live.kick.notified();
    let shutting_down = async {
        // Ends on shutdown, or when its sender is gone (the server is ending either way).
        while shutdown.changed().await.is_ok() {
            if *shutdown.borrow_and_update() {
                return;
            }
        }
    };
    tokio::pin!(kicked, shutting_down);
    let user_id = live
        .meta
        .authorizer
        .get("userId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    tracing::info!(connection_id = id, user_id, "connection open");

    let ending = if already_shutting_down {
        Ending::Server {
            code: 1001,
            reason: "Going away",
            cause: "shutdown",
        }
    } else {
        loop {
            tokio::select! {
                frame = ws.next() => {
                    let Some(frame) = frame else {
                        break Ending::Client { code: 1006, reason: String::new() };
                    };
                    let msg = match frame {
                        Ok(m) => m,
                        Err(e @ WsError::Capacity(_)) => break Ending::TooBig(e),
                        Err(e) => {
                            tracing::info!(connection_id = id, error = %e, "connection broken");
                            break Ending::Client { code: 1006, reason: String::new() };
                        }
                    };
                    // Any client frame, control frames included, counts as activity;
                    // what the server sends does not (as API Gateway's idle timeout).
                    live.touch(now_ms());
                    idle.as_mut().reset(tokio::time::Instant::now() + idle_timeout);
                    match msg {
                        Message::Text(t) => dispatch::frame(state, live, t.as_str().to_owned(), false, &in_flight).await,
                        Message::Binary(b) => dispatch::frame(state, live, STANDARD.encode(&b), true, &in_flight).await,
                        Message::Close(frame) => {
                            let (code, reason) = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.as_str().to_owned()));
                            break Ending::Client { code, reason };
                        }
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
                Some(out) = rx.recv() => {
                    match tokio::time::timeout(write_stall, write_queued(&mut ws, out, &mut rx)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::info!(connection_id = id, error = %e, "could not write to the client");
                            break Ending::Client { code: 1006, reason: String::new() };
                        }
                        Err(_) => break Ending::Stalled,
                    }
                }
                () = &mut kicked => {
                    // A post that was accepted before the DELETE reaches the client before the
                    // close, as on API Gateway (select! may pick the kick over a ready queue).
                    if let Ok(out) = rx.try_recv() {
                        match tokio::time::timeout(write_stall, write_queued(&mut ws, out, &mut rx)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => tracing::info!(connection_id = id, error = %e, "could not write to the client"),
                            Err(_) => break Ending::Stalled,
                        }
                    }
                    break Ending::Server { code: 1000, reason: "Connection closed by server", cause: "DELETE @connections" };
                }
                () = &mut idle => break Ending::Server { code: 1001, reason: "Going away", cause: "idle timeout" },
                () = &mut max => break Ending::Server { code: 1001, reason: "Going away", cause: "maximum connection duration" },
                () = &mut shutting_down => break Ending::Server { code: 1001, reason: "Going away", cause: "shutdown" },
            }
        }
    };

    // Gone for the management API from here on, as on API Gateway.
    state.registry.remove(id);
    let (code, reason) = match ending {
        Ending::Client { code, reason } => {
            // Sends tungstenite's queued reply to the client's close frame, if any.
            let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
            tracing::info!(connection_id = id, code, reason, "client closed");
            (code, reason)
        }
        Ending::Server {
            code,
            reason,
            cause,
        } => {
            tracing::info!(connection_id = id, code, cause, "closing connection");
            close_and_wait(&mut ws, code, reason).await;
            (code, reason.to_owned())
        }
        Ending::Stalled => {
            // No close frame: the socket takes nothing more, and a close handshake would
            // only wait out its grace. Dropping the socket resets the TCP connection.
            tracing::info!(
                connection_id = id,
                stall_secs = write_stall.as_secs_f64(),
                "client stopped reading; dropping the connection"
            );
            (1006, String::new())
        }
        Ending::TooBig(e) => {
            tracing::info!(connection_id = id, error = %e, "frame over the limit; closing with 1009");
            let reason = "Message too big";
            let frame = CloseFrame {
                code: CloseCode::Size,
                reason: reason.into(),
            };
            let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(Some(frame))).await;
            drain(ws.get_mut()).await;
            (1009, reason.to_owned())
        }
    };
    drop(ws);
    dispatch::disconnect(state, &live.meta, code, &reason).await;
}

/// Frames written per flush at most: what is queued is written with one flush (one syscall
/// for a burst of fan-out frames instead of one each), but a connection with a deep queue
/// still returns to reading its client between batches.
const WRITE_BATCH: usize = 64;

/// Writes `first` and whatever else is already queued (up to [`WRITE_BATCH`]), then flushes.
async fn write_queued(
    ws: &mut WebSocketStream<Io>,
    first: Outbound,
    rx: &mut mpsc::Receiver<Outbound>,
) -> Result<(), WsError> {
    ws.feed(message(first)?).await?;
    for _ in 1..WRITE_BATCH {
        match rx.try_recv() {
            Ok(out) => ws.feed(message(out)?).await?,
            Err(_) => break,
        }
    }
    ws.flush().await
}

fn message(out: Outbound) -> Result<Message, WsError> {
    Ok(match out {
        Outbound::Text(t) => Message::Text(Utf8Bytes::try_from(t)?),
        Outbound::Binary(b) => Message::Binary(b),
    })
}

/// Sends a close frame and waits (bounded) for the client's.
async fn close_and_wait(ws: &mut WebSocketStream<Io>, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        if ws.close(Some(frame)).await.is_err() {
            return;
        }
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
}

/// Reads and discards what the client still sends until it is quiet, bounded by
/// [`CLOSE_GRACE`].
async fn drain(io: &mut Io) {
    let mut buf = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        loop {
            match tokio::time::timeout(DRAIN_QUIET, io.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => continue,
                _ => break,
            }
        }
    })
    .await;
}
