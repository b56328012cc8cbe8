//! Stage 4: the hub — greenlets that switch by themselves whenever one would
//! wait, the way gevent does it.
//!
//! Stage 3's greenlets switch only when told to. Here one greenlet per
//! thread, the *hub*, runs an event loop (a ready queue, a timer heap and a
//! `mio` poller), and every spawned greenlet's parent is the hub. A greenlet
//! that must wait — [`sleep`], [`Handle::join`], a [`Queue`], a socket —
//! records what it waits for and switches to the hub; the hub switches back
//! when the wait is over, and runs the others meanwhile. Waits overlap
//! instead of adding up.
//!
//! Run `cargo run --release -p stage-hub` (about half a minute for these
//! listings, most of it the notes' sleeps; the network listings follow) or
//! add `--quick` for a few seconds. On our 2-core machine a release build
//! printed: the notes' naps of 2 s, 3 s and 5 s done in 5.00 s (10.0 s
//! serially); ten 0.5 s tasks in 501 ms spawned, 5.01 s one after another;
//! a `std::thread::sleep` in a greenlet serialising everything and drawing
//! the blocking detector's warning; spawn + join of a trivial greenlet in
//! about 400 ns; 30,000 greenlets asleep at once holding 4.0 KiB of resident
//! memory each.
//!
//! The network listings (part 2) give greenlets sockets: [`net`]'s
//! `TcpListener` and `TcpStream` have `std::net`'s shape but wait in the hub.
//! The lesson ends with one server thread answering 500 echo clients (50
//! with `--quick`), an offline crawl of five HTTPS pages (reached through
//! `http://` redirects) at once against one by one, and five TLS handshakes
//! by rustls — a library that never heard of greenlets — overlapping in one
//! thread. `echo-server`, `echo-load`, `echo-threads`, `echo-client`,
//! `hello-bye`, `crawl`, `handshakes`, `serve-site` and `echo-bench` run
//! single listings; `echo-bench` measured, at 10,000 clients, 75k
//! messages/s from the hub server (tokio current-thread: 73k, a thread per
//! connection: 39k) at 4.9 KiB of resident memory per connection; such
//! figures move by tens of percent from run to run on a shared machine.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use stage_hub::{joinall, sleep, spawn, JoinAll};
//!
//! let start = Instant::now();
//! let naps: Vec<_> = [20, 30, 50]
//!     .into_iter()
//!     .map(|ms| spawn(move || sleep(Duration::from_millis(ms))))
//!     .collect();
//! joinall(&naps, JoinAll::new())?;
//! assert!(start.elapsed() < Duration::from_millis(100)); // not 20 + 30 + 50
//! # Ok::<(), stage_hub::HubError>(())
//! ```
//!
//! # Layout
//!
//! - [`hub`]: the hub itself — its types (`hub/mod.rs`), parking and waking
//!   (`hub/park.rs`), the loop
//!   (`hub/event_loop.rs`), its bookkeeping and the deadlock report
//!   (`hub/state.rs`), timers (`hub/timer.rs`), spawning (`hub/task.rs`),
//!   handles and their links (`hub/handle.rs`), a handle whose value's type
//!   is not known, as a `Group` holds (`hub/member.rs`), joining and waiting on
//!   several things (`hub/join.rs`), per-greenlet values (`hub/local.rs`),
//!   `sleep`,
//!   `yield_now` and `Timeout` (`hub/time.rs`), `spawn_blocking`
//!   (`hub/blocking.rs`), `Wakeup`, the wait another thread can end
//!   (`hub/remote.rs`), the end of a hub when its thread exits
//!   (`hub/close.rs`), diagnostics (`hub/diag.rs`), the blocking
//!   detector's clock (`hub/stopwatch.rs`), errors
//!   (`hub/error.rs`), what it adds to a `--trace` (park reasons, polls:
//!   `hub/traced.rs`), the lists a greenlet's entry keeps that are almost
//!   always empty (`hub/few.rs`), [`hub::footprint`], what the hub keeps
//!   per connection, record by record, [`hub::io`], the
//!   socket-readiness wait, and the table that finds a socket by its mio
//!   token (`hub/sockets.rs`).
//! - [`sync`]: [`Event`], [`AsyncResult`], [`Queue`] and its kin, [`Semaphore`],
//!   [`Group`] and [`Pool`].
//! - [`mod@lesson`]: the notes' listings, the measured cases and the lesson's order.
//! - [`net`]: cooperative sockets, `std::net`'s shapes whose blocking calls wait in the hub.
//! - [`echo`]: the upper-case echo server (hub, threads, tokio), its load generator and benchmark.
//! - [`crawl`]: the concurrent crawler, its HTTP/1.1 client (plain or inside rustls's TLS,
//!   redirects followed) and an offline site to crawl.
//! - [`lesson_net`]: the network listings, their sub-commands and their place in the lesson.
//! - [`soak`]: a million waits ended early and a thousand hubs ended with greenlets
//!   waiting, with resident memory and descriptors before and after.

pub mod crawl;
pub mod echo;
pub mod hub;
pub mod lesson;
pub mod lesson_net;
pub mod net;
pub mod soak;
pub mod sync;

pub use hub::{
    blocking_threshold, current_name, iwait, joinall, reset_diagnostic_hook,
    set_blocking_threshold, set_diagnostic_hook, sleep, sleep_until, spawn, spawn_blocking,
    spawn_later, wait, with_timeout, yield_now, Builder, Deadlock, Diagnostic, Handle, HubError,
    JoinAll, LinkId, Member, Timeout, Wait, Waitable, DEFAULT_BLOCKING_THRESHOLD,
};
pub use lesson::{groups, lesson, Listing, Settings, STAGE};
pub use sync::{
    AsyncResult, Channel, Event, Group, LifoQueue, Pool, PriorityQueue, PutError, Queue, Semaphore,
    SemaphoreGuard, TaskDoneTooOften,
};
