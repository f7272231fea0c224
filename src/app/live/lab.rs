//! What a `/bytes/N` request may ask for the live ladder, in its query:
//! - `drop=P`: drop that share (0 to 0.5) of this connection's outgoing segments, so a
//!   learner watches loss recovery on it alone; `seed=S` picks which (default 1);
//! - `close=1`: close the connection after the answer (a page cannot send
//!   `Connection: close` itself, and wants to see the FIN).
//!
//! Either one adds `X-Synack-Peer: ADDR:PORT` to the answer, the client's address as synack
//! saw it, so the page knows which connection to watch.

use crate::app::http::Request;

/// More loss than this would stall a transfer for minutes of backed-off timeouts.
pub(crate) const MAX_DROP: f64 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Lab {
    pub drop: Option<f64>,
    pub seed: u64,
    pub close: bool,
}

impl Lab {
    /// The request's ladder parameters; `None` when it has none (or is not `/bytes/N`).
    pub(crate) fn of(req: &Request) -> Option<Lab> {
        if !req.route_path().starts_with("/bytes/") {
            return None;
        }
        let query = req.path.split_once('?')?.1;
        let query = query.split('#').next().unwrap_or_default();
        let mut lab = Lab { drop: None, seed: 1, close: false };
        let mut any = false;
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "drop" => {
                    // A share that does not parse is no fault, not an error: the bytes still come.
                    lab.drop = v.parse::<f64>().ok().filter(|p| p.is_finite() && *p > 0.0).map(|p| p.min(MAX_DROP));
                    any = true;
                }
                "seed" => lab.seed = v.parse().unwrap_or(1),
                "close" => {
                    lab.close = v != "0";
                    any = true;
                }
                _ => {}
            }
        }
        any.then_some(lab)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::http::{parse_head, HttpConfig, ReadOutcome};

    fn lab(target: &str) -> Option<Lab> {
        let head = format!("GET {target} HTTP/1.1\r\n\r\n");
        match parse_head(head.as_bytes(), &HttpConfig::default()) {
            Some(ReadOutcome::Request(req)) => Lab::of(&req),
            _ => panic!("no request"),
        }
    }

    #[test]
    fn drop_seed_and_close_are_read_and_bounded() {
        assert_eq!(lab("/bytes/10"), None);
        assert_eq!(lab("/?drop=0.1"), None);
        assert_eq!(lab("/bytes/10?drop=0.05&seed=7"), Some(Lab { drop: Some(0.05), seed: 7, close: false }));
        assert_eq!(lab("/bytes/10?drop=0.9&close=1"), Some(Lab { drop: Some(MAX_DROP), seed: 1, close: true }));
        assert_eq!(lab("/bytes/10?drop=nan"), Some(Lab { drop: None, seed: 1, close: false }));
        assert_eq!(lab("/bytes/10?drop=-1&close"), Some(Lab { drop: None, seed: 1, close: true }));
    }
}
