//! Running several futures at once on awsha's single-threaded runtime.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Polls every future until all are done and returns their outputs in order. Unlike spawning,
/// this needs neither `Send` nor `'static`, so the futures may borrow the run's state.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn runs_concurrently_and_keeps_order() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let started = Instant::now();
        let out = rt.block_on(join_all(
            [300u64, 100, 200]
                .into_iter()
                .map(|ms| async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    ms
                })
                .collect(),
        ));
        assert_eq!(out, [300, 100, 200]);
        assert!(
            started.elapsed() < Duration::from_millis(550),
            "concurrent, not 600 ms in a row"
        );
        assert!(rt.block_on(join_all(Vec::<std::future::Ready<u8>>::new())).is_empty());
    }
}
