//! Cooperative sockets: `std::net`'s shapes over mio's non-blocking sockets.
//!
//! Every call that would block registers interest with the hub and switches
//! away; the hub switches back when epoll says the socket is ready. Calls
//! retry until the kernel stops saying "would block" (mio's readiness is
//! edge-triggered: waiting is only correct once a call has drained the socket
//! to `WouldBlock`), and wake-ups may be spurious, so every wait sits in a
//! retry loop and no loop spins.

mod listener;
mod split;
mod stream;

pub use listener::{std_listener, TcpListener, BACKLOG};
pub use split::{ReadHalf, WriteHalf};
pub use stream::{resolve, TcpStream};
