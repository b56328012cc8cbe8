//! The cross-thread channel: values in order from any thread, a close that
//! the receiver sees, a receiver that waits in its hub while the others
//! run, and a sending hub that dies.

use std::cell::Cell;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use stage_cores::{channel, RecvError};

#[test]
fn values_arrive_in_order_from_each_sender_then_the_channel_closes() {
    let (tx, rx) = channel::<(u32, u32)>();
    let senders: Vec<_> = (0..3)
        .map(|who| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..1000 {
                    tx.send((who, i)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut next = [0u32; 3];
    let mut count = 0;
    loop {
        match rx.recv() {
            Ok((who, i)) => {
                assert_eq!(i, next[who as usize], "sender {who} out of order");
                next[who as usize] += 1;
                count += 1;
            }
            Err(RecvError::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((count, next), (3000, [1000; 3]));
    for s in senders {
        s.join().unwrap();
    }
    // Closed for good: later receives say so at once.
    assert!(matches!(rx.recv(), Err(RecvError::Closed)));
}

#[test]
fn the_receiver_parks_in_its_hub_and_the_other_greenlets_run() {
    let (tx, rx) = channel::<&'static str>();
    let ticks = Rc::new(Cell::new(0u32));
    let ticker = {
        let ticks = ticks.clone();
        stage_hub::spawn(move || {
            for _ in 0..10 {
                stage_hub::sleep(Duration::from_millis(2));
                ticks.set(ticks.get() + 1);
            }
        })
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let sender = thread::spawn(move || {
        ready_rx.recv().unwrap(); // only after the ticker finished
        tx.send("late").unwrap();
    });
    let receiver = stage_hub::spawn(move || rx.recv());
    ticker.join().unwrap();
    assert_eq!(
        ticks.get(),
        10,
        "the hub kept running while a greenlet waited"
    );
    ready_tx.send(()).unwrap();
    assert_eq!(receiver.join().unwrap().unwrap(), "late");
    sender.join().unwrap();
}

#[test]
fn a_receiver_can_move_to_another_thread_before_it_waits() {
    let (tx, rx) = channel::<u64>();
    let hub_thread = thread::spawn(move || rx.recv().unwrap() + rx.recv().unwrap());
    tx.send(40).unwrap();
    tx.send(2).unwrap();
    assert_eq!(hub_thread.join().unwrap(), 42);
}

#[test]
fn a_dropped_receiver_hands_the_value_back_and_drops_what_was_queued() {
    let (tx, rx) = channel::<std::sync::Arc<()>>();
    let queued = std::sync::Arc::new(());
    tx.send(queued.clone()).unwrap();
    assert_eq!(std::sync::Arc::strong_count(&queued), 2);
    drop(rx);
    assert_eq!(
        std::sync::Arc::strong_count(&queued),
        1,
        "the queue was dropped"
    );
    let err = tx.send(queued.clone()).unwrap_err();
    assert!(err.to_string().contains("receiving end"), "{err}");
}

#[test]
fn a_timed_receive_gives_up_and_try_recv_never_waits() {
    let (tx, rx) = channel::<u8>();
    let start = Instant::now();
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(30)),
        Err(RecvError::TimedOut)
    ));
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert!(matches!(rx.try_recv(), Ok(None)));
    tx.send(9).unwrap();
    assert!(matches!(rx.try_recv(), Ok(Some(9))));
    drop(tx);
    assert!(matches!(rx.try_recv(), Err(RecvError::Closed)));
}

#[test]
fn a_sending_hub_that_dies_closes_the_channel_for_the_waiting_receiver() {
    let (tx, rx) = channel::<u32>();
    let dying = thread::spawn(move || {
        // A hub thread whose sender lives in a greenlet of its own hub; the
        // thread then panics: what it owned is dropped as it unwinds.
        let keeper = stage_hub::spawn(move || {
            tx.send(1).unwrap();
            tx // returned to the main greenlet, which holds it when it dies
        });
        let _tx = keeper.join().unwrap();
        panic!("this hub's thread dies");
    });
    assert_eq!(rx.recv().unwrap(), 1);
    let start = Instant::now();
    match rx.recv() {
        Err(RecvError::Closed) => {}
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(dying.join().is_err(), "the sending thread did panic");
}
