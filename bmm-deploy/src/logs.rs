//! A bounded ring of log lines per server, with followers.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::{LogLine, LogSource, LogStream};

/// How many lines a ring keeps.
pub(crate) const RING_LINES: usize = 1000;

/// The last [`RING_LINES`] lines of a server's log, and a channel that
/// followers subscribe to.
#[derive(Debug)]
pub(crate) struct LogRing {
    lines: Mutex<VecDeque<LogLine>>,
    tail: broadcast::Sender<LogLine>,
}

impl LogRing {
    pub(crate) fn new() -> Self {
        Self {
            lines: Mutex::new(VecDeque::with_capacity(64)),
            tail: broadcast::channel(256).0,
        }
    }

    /// Appends a line, dropping the oldest when full.
    pub(crate) fn push(&self, source: LogSource, text: impl Into<String>) {
        let line = LogLine {
            source,
            text: text.into(),
        };
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == RING_LINES {
            lines.pop_front();
        }
        lines.push_back(line.clone());
        // Nobody following is not an error.
        let _ = self.tail.send(line);
    }

    /// The kept lines, then (with `follow`) new ones until the ring is dropped.
    pub(crate) fn stream(&self, follow: bool) -> LogStream {
        // Subscribe under the lock so no line falls between the copy and the tail.
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let past: Vec<LogLine> = lines.iter().cloned().collect();
        let receiver = follow.then(|| self.tail.subscribe());
        drop(lines);
        let past = futures_util::stream::iter(past.into_iter().map(Ok));
        match receiver {
            None => past.boxed(),
            Some(receiver) => {
                let live = futures_util::stream::unfold(receiver, |mut receiver| async move {
                    loop {
                        match receiver.recv().await {
                            Ok(line) => return Some((Ok(line), receiver)),
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(broadcast::error::RecvError::Closed) => return None,
                        }
                    }
                });
                past.chain(live).boxed()
            }
        }
    }
}
