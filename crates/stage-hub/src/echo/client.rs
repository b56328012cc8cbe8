//! The notes' smaller listings: the interactive client, and the hello/bye
//! exchange they write from memory (a hub server greeting thread clients).

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::sync::{Arc, Mutex};
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
/// (the notes loop forever). Every line goes to `say` the moment it
/// happens — the server's from the hub's thread, the clients' from theirs —
/// so they come out interleaved, as in the notes' run; the transcript is
/// returned in that same order.
pub fn hello_bye(
    clients: usize,
    rounds: usize,
    say: impl Fn(&str) + Send + Sync + 'static,
) -> Result<Vec<String>, HelloError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    // One transcript for both sides, in the order things happen.
    let say = Arc::new(say);
    let transcript = Arc::new(Mutex::new(Vec::new()));
    let line = {
        let (say, transcript) = (say.clone(), transcript.clone());
        move |text: String| {
            say(&text);
            if let Ok(mut t) = transcript.lock() {
                t.push(text);
            }
        }
    };
    let line = Arc::new(line);
    let server = {
        let line = line.clone();
        hub::spawn(move || -> Result<(), HelloError> {
            let mut talks = Vec::new();
            for _ in 0..clients {
                let (mut conn, peer) = listener.accept()?;
                let line = line.clone();
                talks.push(hub::spawn(move || -> io::Result<()> {
                    let mut buf = [0u8; 1024];
                    for _ in 0..rounds {
                        conn.write_all(b"hello")?;
                        let n = conn.read(&mut buf)?;
                        let said = String::from_utf8_lossy(&buf[..n]);
                        line(format!("server heard {said:?} from port {}", peer.port()));
                    }
                    Ok(())
                }));
            }
            for talk in talks {
                talk.join()??;
            }
            Ok(())
        })
    };
    // The clients block, so they run on the blocking pool's side of the
    // fence: one job starts the threads and waits for them.
    hub::spawn_blocking(move || -> io::Result<()> {
        let threads: Vec<_> = (0..clients)
            .map(|i| {
                let line = line.clone();
                std::thread::Builder::new()
                    .name(format!("client-{i}"))
                    .stack_size(64 * 1024)
                    .spawn(move || -> io::Result<()> {
                        let mut sk = StdStream::connect(addr)?;
                        sk.set_read_timeout(Some(Duration::from_secs(30)))?;
                        let port = sk.local_addr()?.port();
                        let mut hello = [0u8; 5];
                        for _ in 0..rounds {
                            sk.read_exact(&mut hello)?;
                            let got = String::from_utf8_lossy(&hello);
                            line(format!("client-{i} (port {port}) got {got:?}"));
                            sk.write_all(b"bye")?;
                        }
                        Ok(())
                    })
            })
            .collect::<io::Result<_>>()?;
        for t in threads {
            t.join()
                .map_err(|_| io::Error::other("a client thread panicked"))??;
        }
        Ok(())
    })??;
    server.join()??;
    let lines = transcript.lock().map(|t| t.clone()).unwrap_or_default();
    Ok(lines)
}
// ANCHOR_END: hello_bye
