//! Stage 5: the notes' ideal state — processes, with threads in them, with
//! greenlets in those — on every core.
//!
//! Stage 4's hub is one thread: however many greenlets it runs, it runs them
//! on one core, one at a time. That is why greenlets do not help CPU work
//! (the notes' drawback), and why the notes end on "open several processes,
//! threads in each, coroutines in each thread". This stage builds exactly
//! that, standing on stage 4:
//!
//! - many hubs: N threads, each running a hub of its own ([`Hubs`]); work
//!   handed from one hub to another and awaited cooperatively
//!   ([`HubRef::spawn`]), over a cross-thread [`channel()`] whose receiver
//!   parks in its hub while the sender may be any thread;
//! - many processes: P workers, this very program re-executed, each
//!   serving the same port through `SO_REUSEPORT`, kept alive by a
//!   [`Supervisor`] that restarts a worker that dies and sums everyone's
//!   counts at the end;
//! - the combination: `stage-cores echo-server --hubs T --procs P`.
//!
//! Run `cargo run --release -p stage-cores` (two to three minutes; `--quick`
//! takes seconds). It prints the core count, then: CPU-bound tasks in one
//! hub, over N hub threads and over N processes (the first takes the sum of
//! the tasks' times, the others about 1/N of it on N idle cores); and the
//! echo server with CPU work per message served by one hub, N hubs, N
//! processes, P × T, tokio's multi-thread runtime and a thread per
//! connection, at two client counts, with the CPU each side used. The
//! chapter "Cores" explains what to expect and where the recorded figures
//! go; with two cores shared with the load generator (and, on a busy
//! machine, with everything else), expect the N-way echo cases short of N
//! times one: the per-core efficiency the lesson prints is the figure that
//! carries over to a bigger machine.
//!
//! ```
//! // Four CPU tasks handed to two hubs, awaited from this thread's hub.
//! let hubs = stage_cores::Hubs::start(2)?;
//! let tasks: Vec<_> = (0..4)
//!     .map(|i| hubs.hub(i).spawn(|| stage_cores::work::task(1_000)))
//!     .collect::<Result<_, _>>()?;
//! let sum: u64 = tasks.into_iter().map(|t| t.join()).sum::<Result<u64, _>>()?;
//! assert_eq!(sum, 4 * stage_cores::work::task(1_000));
//! # Ok::<(), stage_cores::CoresError>(())
//! ```
//!
//! # Layout
//!
//! - [`mod@channel`]: the cross-thread channel, on stage 4's `hub::Wakeup`.
//! - [`hubs`]: N hub threads, and handing work to one of them.
//! - [`work`]: the CPU work, stage 1's loop: whole tasks, or a cost per message.
//! - [`server`]: the echo server with work per message on T hubs (and its peers).
//! - [`process`]: workers re-executed from this program, and their supervisor.
//! - [`cores`]: how many cores, and the limits on `--hubs` and `--procs`.
//! - [`mod@lesson`]: the lesson's listings, cases and order; `lesson/echo.rs`, the echo
//!   comparison and who used the CPU in it.

pub mod channel;
pub mod cores;
pub mod hubs;
pub mod lesson;
pub mod process;
pub mod server;
pub mod work;

pub use channel::{channel, Receiver, RecvError, SendError, Sender};
pub use hubs::{CoresError, HubRef, Hubs, RemoteHandle};
pub use lesson::{groups, lesson, Listing, Settings, STAGE};
pub use process::{main_if_worker, Supervisor};
