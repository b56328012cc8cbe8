//! Listening sockets that share a port: `SO_REUSEPORT`.
//!
//! With `SO_REUSEPORT` set before `bind`, several sockets (of one user) may
//! listen on the same address. Each has its own accept queue, and the
//! kernel spreads new connections over them by a hash of the client's
//! address and port: every hub, in every process, accepts from a queue of
//! its own, and nobody wakes for a connection another will take. When a
//! listener closes (its process died), the connections still queued on it
//! are reset, and new ones go to the listeners that are left.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Socket, Type};

/// How many connections may wait in each listener's accept queue: the
/// same as stage-hub's servers (see there why so many).
pub use stage_hub::net::BACKLOG;

fn reusable(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

// ANCHOR: reuseport
/// A listener on `addr` that other `SO_REUSEPORT` listeners may share.
pub fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = reusable(addr)?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
// ANCHOR_END: reuseport

/// Hold `addr` (picking a port if it is 0) without listening on it: a
/// supervisor keeps the port so that workers it restarts can bind it again,
/// and a socket that does not listen is never handed a connection.
pub fn reserve(addr: SocketAddr) -> io::Result<(Socket, SocketAddr)> {
    let socket = reusable(addr)?;
    let bound = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("the reserved socket has no IP address"))?;
    Ok((socket, bound))
}

/// `n` listeners sharing one port (picked by the first if `addr`'s is 0).
pub fn listeners(addr: SocketAddr, n: usize) -> io::Result<(Vec<TcpListener>, SocketAddr)> {
    let first = reuseport_listener(addr)?;
    let bound = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..n.max(1) {
        all.push(reuseport_listener(bound)?);
    }
    Ok((all, bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_share_a_port_and_a_reservation_keeps_it() {
        let (held, addr) = reserve("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(addr.port(), 0);
        let (all, bound) = listeners(addr, 3).unwrap();
        assert_eq!((all.len(), bound), (3, addr));
        // A plain listener (no SO_REUSEPORT) cannot take the shared port.
        assert!(std::net::TcpListener::bind(addr).is_err());
        drop(held);
    }
}
