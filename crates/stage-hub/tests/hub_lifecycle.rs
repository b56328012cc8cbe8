//! Nothing left behind: greenlets that merely waited in the hub stay
//! killable by their own handles, and a thread that ends with greenlets
//! still waiting unwinds them and frees its hub, descriptors and all.
//!
//! The descriptor and hub counts are the process's, so every test here
//! takes one lock and runs its hub in a thread of its own, which has ended
//! (and freed its hub) before the lock is let go.

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use stage_greenlet::{switch_to_parent, Greenlet};
use stage_hub::hub::hubs_alive;
use stage_hub::net::TcpListener;
use stage_hub::{sleep, spawn, spawn_later, with_timeout, yield_now, Event, Queue, Semaphore};

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// This process's open file descriptors.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Counts drops across threads: proves a greenlet's stack was unwound.
struct Dropped(Arc<AtomicUsize>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Sets its flag when dropped: proves a greenlet's stack was unwound.
struct Flag(Rc<Cell<bool>>);

impl Drop for Flag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// On a thread of its own (so with a hub of its own): a stage-greenlet
/// greenlet holding a [`Flag`] runs `waits`, which may wait in the hub,
/// then switches back to the thread's main greenlet, by hand, with what
/// `waits` returned. Dropping its last handle must unwind it, hub or not;
/// then `after` gets what `waits` returned, on the same thread.
fn waits_then_is_dropped<T: 'static>(
    waits: impl FnOnce() -> T + Send + 'static,
    after: impl FnOnce(T) + Send + 'static,
) {
    std::thread::spawn(|| {
        let dropped = Rc::new(Cell::new(false));
        let flag = Flag(dropped.clone());
        let g = Greenlet::new(move |()| {
            let _flag = flag;
            let () = switch_to_parent(waits()).unwrap();
            unreachable!("nothing switches to it again");
        })
        .unwrap();
        let waited: T = g.switch(()).unwrap();
        assert!(!dropped.get());
        drop(g); // stage-greenlet's rule: the last handle kills it
        assert!(dropped.get(), "the hub kept it alive");
        after(waited);
    })
    .join()
    .unwrap();
}

#[test]
fn a_stage_greenlet_that_waited_in_the_hub_is_still_killed_by_dropping_its_last_handle() {
    let _serial = serial();
    waits_then_is_dropped(
        || {
            yield_now(); // waits in the hub: the hub switches back to it
            sleep(Duration::from_millis(1)); // and once more, with a timer
        },
        |()| {},
    );
}

#[test]
fn a_stage_greenlet_may_wait_inside_with_timeout_and_is_still_freed() {
    let _serial = serial();
    waits_then_is_dropped(
        || {
            with_timeout(Duration::from_millis(5), || {
                yield_now(); // a wait inside the block...
                sleep(Duration::from_secs(60)); // ...and one the limit ends
            })
            .is_err()
        },
        |timed_out| {
            assert!(timed_out);
            // The hub still serves everyone else.
            assert_eq!(spawn(|| 7).join().unwrap(), 7);
        },
    );
}

/// In a thread of its own: greenlets parked on every kind of wait, one
/// that never started, one running a stage-greenlet greenlet that waits,
/// and then the thread ends. Returns how many of them there were.
fn end_a_thread_with_everyone_waiting(dropped: Arc<AtomicUsize>) -> usize {
    std::thread::spawn(move || {
        let mark = || Dropped(dropped.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        let (event, queue, sem) = (Event::new(), Queue::<u8>::unbounded(), Semaphore::new(0));
        let waiters = vec![
            {
                let m = mark();
                spawn(move || {
                    let _m = m;
                    sleep(Duration::from_secs(60));
                })
            },
            {
                let (m, e) = (mark(), event.clone());
                spawn(move || {
                    let _m = m;
                    let _ = e.wait();
                })
            },
            {
                let (m, q) = (mark(), queue.clone());
                spawn(move || {
                    let _m = m;
                    let _ = q.get();
                })
            },
            {
                let (m, s) = (mark(), sem.clone());
                spawn(move || {
                    let _m = m;
                    let _ = s.acquire();
                })
            },
            {
                let m = mark();
                spawn(move || {
                    let _m = m;
                    let _ = listener.accept(); // the listener's socket is on this stack
                })
            },
            {
                let m = mark();
                let mut server = server;
                spawn(move || {
                    let _m = m;
                    let _ = server.read(&mut [0u8; 16]);
                })
            },
            {
                // A greenlet of stage-greenlet's, started by a spawned one,
                // parked in the hub: killed too.
                let (m, inner) = (mark(), mark());
                spawn(move || {
                    let _m = m;
                    let g = Greenlet::new(move |()| {
                        let _inner = inner;
                        sleep(Duration::from_secs(60));
                    })
                    .unwrap();
                    let () = g.switch(()).unwrap();
                })
            },
            {
                // Never starts: its closure is dropped.
                let m = mark();
                spawn_later(Duration::from_secs(60), move || drop(m))
            },
        ];
        yield_now(); // every one of them parks
        let joiner = {
            let (m, first) = (mark(), waiters.into_iter().next());
            spawn(move || {
                let _m = m;
                let _ = first.map(|h| h.join());
            })
        };
        yield_now();
        drop((joiner, client));
        10 // eight waiters, the greenlet inside one of them, the joiner
    })
    .join()
    .unwrap()
}

#[test]
fn a_thread_that_ends_with_greenlets_waiting_unwinds_them_and_frees_its_hub() {
    let _serial = serial();
    let (fds, hubs) = (open_fds(), hubs_alive());
    let dropped = Arc::new(AtomicUsize::new(0));
    let made = end_a_thread_with_everyone_waiting(dropped.clone());
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        made,
        "every stack was unwound"
    );
    assert_eq!(hubs_alive(), hubs, "the thread's hub was freed");
    assert_eq!(open_fds(), fds, "its poller, waker and sockets were closed");
}

#[test]
fn a_thread_pool_that_runs_hubs_leaks_no_descriptors() {
    let _serial = serial();
    let (fds, hubs) = (open_fds(), hubs_alive());
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut made = 0;
    for _ in 0..20 {
        made += end_a_thread_with_everyone_waiting(dropped.clone());
    }
    assert_eq!(dropped.load(Ordering::SeqCst), made);
    assert_eq!(hubs_alive(), hubs);
    assert_eq!(open_fds(), fds);
}

#[test]
fn a_greenlet_that_outlives_its_thread_cannot_keep_its_hubs_descriptors() {
    // A stage-greenlet greenlet parked in the hub whose handle is leaked:
    // it is killed at thread exit like any waiter; even a hub something
    // still holds closes its descriptors.
    let _serial = serial();
    let fds = open_fds();
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    std::thread::spawn(move || {
        let mark = Dropped(d);
        let holder = spawn(move || {
            let g = Greenlet::new(move |()| {
                let _mark = mark;
                sleep(Duration::from_secs(60));
            })
            .unwrap();
            std::mem::forget(g.clone()); // a handle nobody will ever drop
            let () = g.switch(()).unwrap();
        });
        yield_now();
        drop(holder);
    })
    .join()
    .unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "killed at thread exit");
    assert_eq!(open_fds(), fds);
}
