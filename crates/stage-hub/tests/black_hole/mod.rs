//! A listener nobody can connect to, for the tests of connect timeouts.

use std::time::Duration;

/// A listener whose accept queue is full and never drained: the kernel
/// drops further SYNs, so connecting to it hangs until a timeout. Keep the
/// fillers alive as long as the listener: they are what fills the queue.
pub(crate) fn black_hole() -> (std::net::TcpListener, Vec<std::net::TcpStream>) {
    // std cannot choose the backlog; tokio's socket builder can (0).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let listener = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        socket.listen(0).unwrap().into_std().unwrap()
    });
    let addr = listener.local_addr().unwrap();
    let fillers = (0..3)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        })
        .collect();
    (listener, fillers)
}
