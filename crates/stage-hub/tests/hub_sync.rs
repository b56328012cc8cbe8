//! Event, Queue, Semaphore, Pool, spawn_blocking and the socket wait.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use stage_hub::hub::io::Registration;
use stage_hub::{
    joinall, sleep, spawn, spawn_blocking, yield_now, Channel, Event, HubError, JoinAll, LifoQueue,
    Pool, PriorityQueue, Queue, Semaphore,
};

const MS: fn(u64) -> Duration = Duration::from_millis;

#[test]
fn event_wakes_every_waiter_and_stays_set_until_cleared() {
    let ev = Event::new();
    let woke = Rc::new(Cell::new(0));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let (ev, woke) = (ev.clone(), woke.clone());
            spawn(move || {
                ev.wait().unwrap();
                woke.set(woke.get() + 1);
            })
        })
        .collect();
    yield_now();
    assert_eq!(woke.get(), 0);
    ev.set();
    joinall(&waiters, JoinAll::new()).unwrap();
    assert_eq!(woke.get(), 3);
    ev.wait_timeout(MS(1)).expect("still set");
    ev.clear();
    let err = ev.wait_timeout(MS(5)).unwrap_err();
    assert!(err.is_timeout(), "cleared: the wait times out, not {err}");
}

#[test]
fn an_unbounded_queue_passes_items_in_order() {
    let q = Queue::unbounded();
    let tx = q.clone();
    let producer = spawn(move || {
        for i in 0..100 {
            tx.put(i).unwrap();
            if i % 10 == 0 {
                sleep(MS(1));
            }
        }
    });
    let got: Vec<i32> = (0..100).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    producer.join().unwrap();
    match q.get_timeout(MS(5)) {
        Err(HubError::TimedOut { limit, elapsed }) => {
            assert_eq!(limit, MS(5));
            assert!(elapsed >= MS(5), "{elapsed:?}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(q.capacity(), None);
}

#[test]
fn a_bounded_queue_makes_the_producer_wait_for_the_consumer() {
    let q = Queue::bounded(2);
    let log = Rc::new(RefCell::new(Vec::new()));
    let (tx, l) = (q.clone(), log.clone());
    let producer = spawn(move || {
        for i in 0..5 {
            tx.put(i).unwrap();
            l.borrow_mut().push(format!("put {i}"));
        }
    });
    yield_now(); // the producer fills the queue and parks on the third put
    assert_eq!(q.len(), 2);
    assert_eq!(*log.borrow(), ["put 0", "put 1"]);
    assert_eq!(q.try_put(99), Err(99), "full");
    let got: Vec<i32> = (0..5).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    producer.join().unwrap();
}

#[test]
fn a_killed_getter_does_not_strand_an_item() {
    let q: Queue<u32> = Queue::unbounded();
    let (qa, qb) = (q.clone(), q.clone());
    let first = spawn(move || qa.get().unwrap());
    let second = spawn(move || qb.get().unwrap());
    yield_now(); // both park in get
    q.try_put(7).unwrap(); // wakes `first`...
    first.kill(); // ...which dies before taking it
    assert_eq!(second.join().unwrap(), 7, "the wake-up was passed on");
}

#[test]
fn a_semaphore_admits_at_most_its_permits() {
    let sem = Semaphore::new(2);
    let inside = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (sem, inside, peak) = (sem.clone(), inside.clone(), peak.clone());
            spawn(move || {
                let _permit = sem.acquire().unwrap();
                inside.set(inside.get() + 1);
                peak.set(peak.get().max(inside.get()));
                sleep(MS(5));
                inside.set(inside.get() - 1);
            })
        })
        .collect();
    joinall(&handles, JoinAll::new().stop_at_first_failure()).unwrap();
    assert_eq!(peak.get(), 2);
    assert_eq!(sem.available(), 2);
}

#[test]
fn a_pool_caps_how_many_greenlets_run_at_once() {
    let pool = Pool::new(3);
    let running = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for i in 0..9u64 {
        let (running, peak) = (running.clone(), peak.clone());
        handles.push(
            pool.spawn(move || {
                running.set(running.get() + 1);
                peak.set(peak.get().max(running.get()));
                sleep(MS(20));
                running.set(running.get() - 1);
                i
            })
            .unwrap(),
        );
        assert!(pool.running() <= 3);
    }
    pool.join().unwrap();
    assert_eq!(pool.running(), 0);
    assert_eq!(peak.get(), 3);
    assert!(start.elapsed() >= MS(60), "three rounds of three");
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 36);
}

#[test]
fn spawn_blocking_does_not_block_the_other_greenlets() {
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let ticker = spawn(move || {
        for _ in 0..10 {
            sleep(MS(10));
            t.set(t.get() + 1);
        }
    });
    let start = Instant::now();
    let value = spawn_blocking(|| {
        std::thread::sleep(MS(150));
        "done on a pool thread"
    })
    .unwrap();
    assert_eq!(value, "done on a pool thread");
    assert!(start.elapsed() >= MS(150));
    assert!(
        ticks.get() >= 3,
        "the ticker ran while we waited: {} ticks",
        ticks.get()
    );
    ticker.join().unwrap();
}

#[test]
fn a_panicking_blocking_job_comes_back_as_an_error() {
    let err = spawn_blocking(|| -> u8 { panic!("job failed") }).unwrap_err();
    assert!(
        matches!(&err, HubError::Panicked { message, .. } if message.contains("job failed")),
        "{err}"
    );
}

#[test]
fn a_greenlet_waiting_on_a_socket_lets_others_run_and_wakes_on_data() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let reader = spawn(move || -> std::io::Result<Vec<u8>> {
        let mut server = mio::net::TcpStream::from_std(server);
        let reg = Registration::new(&mut server, mio::Interest::READABLE)?;
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while got.len() < 10 {
            match server.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    reg.wait(mio::Interest::READABLE, None)?;
                }
                Err(e) => return Err(e),
            }
        }
        // Nothing more comes: a deadline ends the wait.
        let err = reg
            .wait(mio::Interest::READABLE, Some(Instant::now() + MS(10)))
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        reg.deregister(&mut server)?;
        Ok(got)
    });
    let writer = spawn(move || {
        client.write_all(b"hello").unwrap();
        sleep(MS(10)); // the reader parks meanwhile
        client.write_all(b"world").unwrap();
        client
    });
    let _client = writer.join().unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), b"helloworld");
}

#[test]
fn queue_getters_are_served_in_the_order_they_came() {
    let q: Queue<u32> = Queue::unbounded();
    let order = Rc::new(RefCell::new(Vec::new()));
    let getters: Vec<_> = ["first", "second", "third"]
        .into_iter()
        .map(|name| {
            let (q, order) = (q.clone(), order.clone());
            spawn(move || {
                let item = q.get().unwrap();
                order.borrow_mut().push((name, item));
            })
        })
        .collect();
    yield_now(); // all three park in get, in spawn order
    for item in 1..=3 {
        q.try_put(item).unwrap();
    }
    joinall(&getters, JoinAll::new()).unwrap();
    assert_eq!(*order.borrow(), [("first", 1), ("second", 2), ("third", 3)]);
}

// gevent's semantics, from its documentation and test suite
// (test__event.py, test__semaphore.py, test__queue.py).

#[test]
fn set_wakes_every_waiter_and_each_wait_succeeds_even_if_cleared_before_it_runs() {
    // gevent's Event.wait: "returns true if and only if the internal flag
    // has been set to true, either before the wait call or after the wait
    // starts" (1.1: the return value is the flag during the wait).
    let ev = Event::new();
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let ev = ev.clone();
            if i == 0 {
                spawn(move || ev.wait().is_ok())
            } else {
                spawn(move || ev.wait_timeout(Duration::from_secs(10)).is_ok())
            }
        })
        .collect();
    yield_now(); // all three park
    ev.set();
    ev.clear(); // before any of them runs
    joinall(&waiters, JoinAll::new()).unwrap();
    for w in waiters {
        assert!(w.join().unwrap(), "a woken wait returns Ok");
    }
    assert!(!ev.is_set());
}

#[test]
fn a_released_permit_belongs_to_the_oldest_waiter() {
    // gevent's Semaphore is fair (test__semaphore.py, TestSemaphoreFair):
    // the releaser cannot take the permit back before the waiter it woke runs.
    let sem = Semaphore::new(1);
    let order = Rc::new(RefCell::new(Vec::new()));
    let held = sem.acquire().unwrap();
    let (s, o) = (sem.clone(), order.clone());
    let waiter = spawn(move || {
        let _permit = s.acquire().unwrap();
        o.borrow_mut().push("waiter");
    });
    yield_now(); // it parks in acquire
    drop(held); // the permit is the waiter's now...
    assert!(sem.try_acquire().is_none(), "...not the releaser's");
    let (s, o) = (sem.clone(), order.clone());
    let newcomer = spawn(move || {
        let _permit = s.acquire().unwrap();
        o.borrow_mut().push("newcomer");
    });
    joinall(&[waiter, newcomer], JoinAll::new()).unwrap();
    assert_eq!(*order.borrow(), ["waiter", "newcomer"]);
    assert_eq!(sem.available(), 1);
}

#[test]
fn a_killed_waiter_passes_its_permit_on() {
    let sem = Semaphore::new(1);
    let held = sem.acquire().unwrap();
    let (a, b) = (sem.clone(), sem.clone());
    let first = spawn(move || drop(a.acquire().unwrap()));
    let second = spawn(move || a_permit(&b));
    yield_now();
    drop(held); // granted to `first`...
    first.kill(); // ...which dies before using it
    assert!(
        second.join().unwrap(),
        "the permit went on to the next in line"
    );
    assert_eq!(sem.available(), 1);
}

fn a_permit(sem: &Semaphore) -> bool {
    sem.acquire_timeout(Duration::from_secs(10)).is_ok()
}

#[test]
fn acquire_timeout_says_timed_out() {
    let sem = Semaphore::new(0);
    let err = sem.acquire_timeout(MS(5)).unwrap_err();
    assert!(
        matches!(err, HubError::TimedOut { limit, .. } if limit == MS(5)),
        "{err}"
    );
}

#[test]
fn a_woken_getter_keeps_its_item() {
    let q: Queue<u32> = Queue::unbounded();
    let g = q.clone();
    let getter = spawn(move || g.get().unwrap());
    yield_now(); // parks in get
    q.try_put(1).unwrap(); // handed to the getter...
    assert_eq!(q.try_get(), None, "...so nobody else can take it");
    assert_eq!(getter.join().unwrap(), 1);
}

#[test]
fn a_zero_sized_queue_is_a_rendezvous() {
    // gevent's Channel (Queue(0) in old gevent): put waits for a getter.
    for q in [Queue::bounded(0), Queue::bounded(0)] {
        assert_eq!(q.capacity(), Some(0));
        assert_eq!(q.try_put(1), Err(1), "no getter waits: it cannot be put");
        let tx = q.clone();
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let putter = spawn(move || {
            tx.put(7).unwrap();
            l.borrow_mut().push("put done");
        });
        yield_now();
        assert!(log.borrow().is_empty(), "the putter waits for a getter");
        assert_eq!(q.waiting_putters(), 1);
        assert_eq!(q.len(), 0, "nothing is stored");
        assert_eq!(q.get().unwrap(), 7);
        putter.join().unwrap();
        assert_eq!(*log.borrow(), ["put done"]);
    }
    let ch: Channel<u8> = Channel::new();
    let rx = ch.clone();
    let getter = spawn(move || rx.get().unwrap());
    yield_now();
    assert_eq!(ch.try_put(9), Ok(()), "a getter waits: handed over");
    assert_eq!(getter.join().unwrap(), 9);
}

#[test]
fn put_timeout_hands_the_item_back() {
    let q = Queue::bounded(1);
    q.put("kept").unwrap();
    let err = q.put_timeout("back", MS(5)).unwrap_err();
    assert!(err.error.is_timeout(), "{err}");
    assert_eq!(err.item, "back");
    assert_eq!(q.len(), 1);
}

#[test]
fn lifo_and_priority_queues_order_their_items() {
    let lifo = LifoQueue::bounded(3);
    let prio = PriorityQueue::unbounded();
    for i in [2, 3, 1] {
        lifo.put(i).unwrap();
        prio.put(i).unwrap();
    }
    assert!(lifo.is_full());
    let lifo_out: Vec<i32> = (0..3).map(|_| lifo.get().unwrap()).collect();
    let prio_out: Vec<i32> = (0..3).map(|_| prio.get().unwrap()).collect();
    assert_eq!(lifo_out, [1, 3, 2]);
    assert_eq!(prio_out, [1, 2, 3]);
}

#[test]
fn peek_leaves_the_item_and_waits_for_one() {
    let q: Queue<&str> = Queue::unbounded();
    assert_eq!(q.try_peek(), None);
    let err = q.peek_timeout(MS(5)).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let tx = q.clone();
    spawn(move || {
        sleep(MS(5));
        tx.put("next").unwrap();
    });
    assert_eq!(q.peek().unwrap(), "next"); // waited for it
    assert_eq!(q.len(), 1, "still there");
    assert_eq!(q.get().unwrap(), "next");
}

#[test]
fn join_waits_until_every_item_is_marked_done() {
    // gevent's JoinableQueue: join returns when task_done was called once
    // per item put.
    let q = Queue::unbounded();
    for job in 0..3 {
        q.put(job).unwrap();
    }
    let worker = {
        let q = q.clone();
        spawn(move || {
            while let Ok(_job) = q.get_timeout(MS(50)) {
                sleep(MS(1));
                q.task_done().unwrap();
            }
        })
    };
    assert_eq!(q.unfinished(), 3);
    q.join().unwrap();
    assert_eq!(q.unfinished(), 0);
    assert!(q.task_done().is_err(), "once too often");
    worker.join().unwrap();
}
