//! Client-side rate limiting per EC2 action that follows the throttling EC2 answers with, and the
//! estimate of how long a batch of calls needs at EC2's documented rates.
//!
//! EC2 throttles each API action with its own token bucket per account and Region: a burst up to
//! the bucket's size, then the refill rate (docs/references.md §4). A run that moves hundreds of routes sends
//! them all at once; what the bucket refuses comes back as `RequestLimitExceeded`. Retrying each
//! refused call on its own exponential backoff burns its attempts while the bucket refills at a
//! fixed rate, so calls fail although the work fits the deadline. Instead, once an action has been
//! throttled, its calls queue here (first come, first served) and leave at a rate that tracks
//! what EC2 accepts: the accepted calls per window, plus a margin so the bucket is never left to
//! fill up unused, and growing while nothing is refused. The AWS SDKs' "adaptive" retry mode does
//! the same with CUBIC; this is simpler, and measured against a token bucket in `make bench`.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

/// How long one measurement of EC2's acceptance rate lasts.
const WINDOW: Duration = Duration::from_millis(1000);
/// Send this much faster than EC2 was seen to accept: the bucket stays drained (a refilled token
/// that nobody uses is lost only when the bucket is full, but a slow client leaves time unused).
const MARGIN: f64 = 1.1;
/// Growth per window while nothing is refused and calls are waiting.
const GROWTH: f64 = 1.5;
const MIN_RATE: f64 = 0.5;
const MAX_RATE: f64 = 1000.0;
/// A waiter looks again at least this often, so a rate that grew is used at once.
const RECHECK: Duration = Duration::from_millis(250);

/// EC2's documented default bucket for an action (developer guide, "Request throttling"):
/// `(burst, refill per second)`. An estimate only: the account's real bucket may be larger, and
/// every other caller in the account and Region draws from the same one.
pub fn default_bucket(action: &str) -> (u32, f64) {
    match action {
        "AssignPrivateIpAddresses" | "UnassignPrivateIpAddresses" => (100, 5.0),
        "CreateTags" | "DeleteTags" => (100, 10.0),
        a if a.starts_with("Describe") => (100, 20.0),
        // ReplaceRoute, CreateRoute, AssociateAddress and the other mutating actions.
        _ => (50, 5.0),
    }
}

/// How long `calls` requests of `action` take at EC2's default bucket when the bucket starts full:
/// nothing for the burst, then one refill interval per call.
pub fn estimate(action: &str, calls: usize) -> Duration {
    let (burst, refill) = default_bucket(action);
    let beyond = calls.saturating_sub(burst as usize);
    Duration::from_secs_f64(beyond as f64 / refill)
}

/// What became of one request, as far as pacing is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Accepted,
    Throttled,
    /// Failed for another reason: says nothing of the rate.
    Other,
}

/// One action's queue and rate.
#[derive(Debug)]
struct Bucket {
    /// `None` until the action is first throttled: until then calls leave at once.
    rate: Option<f64>,
    /// Tokens in the client-side bucket (at most one: calls are paced, not bursted).
    tokens: f64,
    refilled: Instant,
    /// Tickets: `next` is handed to the next caller, `serving` may send now.
    next: u64,
    serving: u64,
    /// Tickets whose callers gave up (dropped at the deadline) before their turn.
    abandoned: BTreeSet<u64>,
    window_start: Instant,
    window_accepted: u32,
    window_throttled: u32,
}

impl Bucket {
    fn new(now: Instant) -> Bucket {
        Bucket {
            rate: None,
            tokens: 0.0,
            refilled: now,
            next: 0,
            serving: 0,
            abandoned: BTreeSet::new(),
            window_start: now,
            window_accepted: 0,
            window_throttled: 0,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(rate) = self.rate {
            let gained = now.saturating_duration_since(self.refilled).as_secs_f64() * rate;
            self.tokens = (self.tokens + gained).min(1.0);
        }
        self.refilled = now;
    }

    fn skip_abandoned(&mut self) {
        while self.abandoned.remove(&self.serving) {
            self.serving += 1;
        }
    }

    /// Closes the measurement window when it is over and sets the rate it calls for.
    fn adapt(&mut self, now: Instant) {
        let Some(rate) = self.rate else { return };
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < WINDOW {
            return;
        }
        let accepted = f64::from(self.window_accepted) / elapsed.as_secs_f64();
        let waiting = self.next > self.serving;
        let new_rate = if self.window_throttled > 0 {
            if self.window_accepted == 0 {
                // Everything refused: others in the account are using the bucket too.
                rate / 2.0
            } else {
                accepted * MARGIN
            }
        } else if waiting {
            rate.max(accepted) * GROWTH
        } else {
            rate
        };
        self.rate = Some(new_rate.clamp(MIN_RATE, MAX_RATE));
        self.window_start = now;
        self.window_accepted = 0;
        self.window_throttled = 0;
    }
}

/// The queues of one run, by EC2 action. Single-threaded runtime: a RefCell is enough.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: RefCell<HashMap<&'static str, Bucket>>,
}

/// A caller's place in an action's queue; leaving it (drop) before its turn passes the turn on.
struct Ticket<'a> {
    limiter: &'a Limiter,
    action: &'static str,
    number: u64,
    done: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut buckets = self.limiter.buckets.borrow_mut();
        if let Some(b) = buckets.get_mut(self.action) {
            if b.serving == self.number {
                b.serving += 1;
            } else {
                b.abandoned.insert(self.number);
            }
            b.skip_abandoned();
        }
    }
}

impl Limiter {
    pub fn new() -> Limiter {
        Limiter::default()
    }

    /// Waits until a request of `action` may be sent. Returns at once until the action has been
    /// throttled in this run.
    pub async fn acquire(&self, action: &'static str) {
        let number = {
            let mut buckets = self.buckets.borrow_mut();
            let b = buckets.entry(action).or_insert_with(|| Bucket::new(Instant::now()));
            if b.rate.is_none() {
                return;
            }
            b.next += 1;
            b.next - 1
        };
        let mut ticket = Ticket {
            limiter: self,
            action,
            number,
            done: false,
        };
        loop {
            let wait = {
                let mut buckets = self.buckets.borrow_mut();
                let b = buckets.get_mut(action).expect("created above");
                let now = Instant::now();
                b.refill(now);
                b.adapt(now);
                b.skip_abandoned();
                let rate = b.rate.unwrap_or(MAX_RATE);
                if b.serving == number && b.tokens >= 1.0 {
                    b.tokens -= 1.0;
                    b.serving += 1;
                    b.skip_abandoned();
                    ticket.done = true;
                    return;
                }
                // Tokens still needed before this ticket's turn, at the current rate.
                let ahead = number.saturating_sub(b.serving) as f64;
                let needed = ahead + 1.0 - b.tokens;
                Duration::from_secs_f64(needed.max(0.01) / rate).min(RECHECK)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Records an answer. The first throttle of an action starts pacing it, at EC2's documented
    /// refill rate; later windows follow what EC2 accepts.
    pub fn record(&self, action: &'static str, answer: Answer) {
        let now = Instant::now();
        let mut buckets = self.buckets.borrow_mut();
        let b = buckets.entry(action).or_insert_with(|| Bucket::new(now));
        match answer {
            Answer::Accepted => b.window_accepted += 1,
            Answer::Throttled if b.rate.is_none() => {
                // EC2's bucket is empty now; the burst's answers say nothing of its refill rate.
                b.rate = Some(default_bucket(action).1);
                b.tokens = 0.0;
                b.refilled = now;
                b.window_start = now;
                b.window_accepted = 0;
                b.window_throttled = 0;
            }
            Answer::Throttled => b.window_throttled += 1,
            Answer::Other => {}
        }
        b.adapt(now);
    }

    /// The current rate of an action, when it is being paced.
    #[cfg(test)]
    pub fn rate(&self, action: &str) -> Option<f64> {
        self.buckets.borrow().get(action).and_then(|b| b.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// EC2's side: a token bucket that refuses when empty and consumes nothing then.
    struct Ec2Bucket {
        capacity: f64,
        refill: f64,
        tokens: f64,
        at: Instant,
    }

    impl Ec2Bucket {
        fn take(&mut self) -> bool {
            let now = Instant::now();
            self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.refill).min(self.capacity);
            self.at = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                true
            } else {
                false
            }
        }
    }

    /// `calls` requests sent at once against a bucket, each retried through the limiter until it
    /// is accepted; returns (time until the last was accepted, throttled answers).
    async fn drain(calls: usize, capacity: f64, refill: f64, rtt: Duration) -> (Duration, u32) {
        let started = Instant::now();
        let ec2 = Rc::new(RefCell::new(Ec2Bucket {
            capacity,
            refill,
            tokens: capacity,
            at: started,
        }));
        let limiter = Rc::new(Limiter::new());
        let throttled = Rc::new(RefCell::new(0u32));
        let one = |ec2: Rc<RefCell<Ec2Bucket>>, limiter: Rc<Limiter>, throttled: Rc<RefCell<u32>>| async move {
            loop {
                limiter.acquire("ReplaceRoute").await;
                tokio::time::sleep(rtt / 2).await;
                let ok = ec2.borrow_mut().take();
                tokio::time::sleep(rtt / 2).await;
                if ok {
                    limiter.record("ReplaceRoute", Answer::Accepted);
                    return;
                }
                *throttled.borrow_mut() += 1;
                limiter.record("ReplaceRoute", Answer::Throttled);
            }
        };
        futures_util::future::join_all((0..calls).map(|_| one(ec2.clone(), limiter.clone(), throttled.clone()))).await;
        let n = *throttled.borrow();
        (started.elapsed(), n)
    }

    #[tokio::test(start_paused = true)]
    async fn unthrottled_calls_never_wait() {
        let limiter = Limiter::new();
        let started = Instant::now();
        for _ in 0..100 {
            limiter.acquire("ReplaceRoute").await;
            limiter.record("ReplaceRoute", Answer::Accepted);
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(limiter.rate("ReplaceRoute"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_beyond_the_bucket_finishes_close_to_the_bucket_limit() {
        // issue 11's bar: within 1.25 × (calls − capacity) ÷ refill, plus round trips.
        for (calls, capacity, refill) in [(100, 40.0, 10.0), (200, 40.0, 10.0), (500, 50.0, 5.0)] {
            let rtt = Duration::from_millis(50);
            let (took, throttled) = drain(calls, capacity, refill, rtt).await;
            let ideal = (calls as f64 - capacity) / refill;
            let bar = 1.25 * ideal + 4.0 * rtt.as_secs_f64();
            assert!(
                took.as_secs_f64() <= bar,
                "{calls} calls: {took:?} > {bar:.2} s (ideal {ideal:.1} s)"
            );
            // The first burst is refused in full; afterwards only the margin's probes are.
            let burst_refused = calls as u32 - capacity as u32;
            assert!(
                throttled <= burst_refused + (ideal * 2.0) as u32 + 10,
                "{calls} calls: {throttled} throttled answers"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_gives_up_passes_its_turn_on() {
        let limiter = Limiter::new();
        limiter.record("AssociateAddress", Answer::Throttled);
        let rate = limiter.rate("AssociateAddress").unwrap();
        assert_eq!(rate, 5.0);
        // The first caller gives up while queued; the second must still get a turn.
        let first = tokio::time::timeout(Duration::from_millis(10), limiter.acquire("AssociateAddress")).await;
        assert!(first.is_err());
        let started = Instant::now();
        limiter.acquire("AssociateAddress").await;
        assert!(
            started.elapsed() <= Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn estimates_use_ec2s_default_buckets() {
        assert_eq!(estimate("ReplaceRoute", 50), Duration::ZERO);
        assert_eq!(estimate("ReplaceRoute", 200), Duration::from_secs(30));
        assert_eq!(estimate("CreateTags", 110), Duration::from_secs(1));
        assert_eq!(default_bucket("DescribeTags"), (100, 20.0));
    }
}
