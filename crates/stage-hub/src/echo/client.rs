//! The notes' smaller listings: the interactive client, and the hello/bye
//! exchange they write from memory (a hub server greeting thread clients).

use std::cell::RefCell;
use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::rc::Rc;
use std::time::Duration;

use crate::hub::{self, HubError};
use crate::net::TcpListener;

/// The interactive client: send each line of `input`, print the reply with
/// `show`; skip empty lines as the notes do; end cleanly at EOF. Plain
/// blocking std sockets: a person typing is the slowest peer there is.
///
/// Returns how many lines were sent.
pub fn interactive(
    addr: SocketAddr,
    input: impl BufRead,
    show: &mut dyn FnMut(String),
) -> io::Result<usize> {
    let mut stream = StdStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut sent = 0;
    for line in input.lines() {
        let line = line?;
        let msg = line.trim();
        if msg.is_empty() {
            continue;
        }
        stream.write_all(msg.as_bytes())?;
        // The reply is exactly as long as the message; it may come in pieces.
        let mut reply = vec![0; msg.len()];
        stream.read_exact(&mut reply)?;
        show(String::from_utf8_lossy(&reply).into_owned());
        sent += 1;
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    Ok(sent)
}

/// Why the hello/bye exchange failed.
#[derive(Debug)]
pub enum HelloError {
    /// A socket call failed.
    Io(io::Error),
    /// The hub could not run a greenlet.
    Hub(HubError),
}

impl std::fmt::Display for HelloError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HelloError::Io(e) => write!(f, "hello/bye: {e}"),
            HelloError::Hub(e) => write!(f, "hello/bye: {e}"),
        }
    }
}

impl std::error::Error for HelloError {}

impl From<io::Error> for HelloError {
    fn from(e: io::Error) -> Self {
        HelloError::Io(e)
    }
}

impl From<HubError> for HelloError {
    fn from(e: HubError) -> Self {
        HelloError::Hub(e)
    }
}

// ANCHOR: hello_bye
/// The exchange the notes write from memory: a server greenlet per
/// connection says `hello` and reads the answer; each client is an OS
/// thread that reads the greeting and answers `bye`. `rounds` rounds each
/// (the notes loop forever). Returns the transcript, server lines first.
pub fn hello_bye(clients: usize, rounds: usize) -> Result<Vec<String>, HelloError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let heard = Rc::new(RefCell::new(Vec::new()));
    let server = {
        let heard = heard.clone();
        hub::spawn(move || -> Result<(), HelloError> {
            let mut talks = Vec::new();
            for _ in 0..clients {
                let (mut conn, peer) = listener.accept()?;
                let heard = heard.clone();
                talks.push(hub::spawn(move || -> io::Result<()> {
                    let mut buf = [0u8; 1024];
                    for _ in 0..rounds {
                        conn.write_all(b"hello")?;
                        let n = conn.read(&mut buf)?;
                        let said = String::from_utf8_lossy(&buf[..n]).into_owned();
                        heard
                            .borrow_mut()
                            .push(format!("server heard {said:?} from port {}", peer.port()));
                    }
                    Ok(())
                }));
            }
            hub::joinall(&talks, hub::JoinAll::new())?;
            for talk in talks {
                talk.join()??;
            }
            Ok(())
        })
    };
    // The clients block, so they run on the blocking pool's side of the
    // fence: one job starts the threads and waits for them.
    let client_lines = hub::spawn_blocking(move || -> io::Result<Vec<String>> {
        let threads: Vec<_> = (0..clients)
            .map(|i| {
                std::thread::Builder::new()
                    .name(format!("client-{i}"))
                    .spawn(move || -> io::Result<Vec<String>> {
                        let mut sk = StdStream::connect(addr)?;
                        sk.set_read_timeout(Some(Duration::from_secs(10)))?;
                        let mut lines = Vec::new();
                        let mut hello = [0u8; 5];
                        for _ in 0..rounds {
                            sk.read_exact(&mut hello)?;
                            lines.push(format!(
                                "client-{i} got {:?}",
                                String::from_utf8_lossy(&hello)
                            ));
                            sk.write_all(b"bye")?;
                        }
                        Ok(lines)
                    })
            })
            .collect::<io::Result<_>>()?;
        let mut all = Vec::new();
        for t in threads {
            all.extend(
                t.join()
                    .map_err(|_| io::Error::other("a client thread panicked"))??,
            );
        }
        Ok(all)
    })??;
    server.join()??;
    let mut transcript = heard.take();
    transcript.extend(client_lines);
    Ok(transcript)
}
// ANCHOR_END: hello_bye
