//! What the one-node HTTP tests (`metrics.rs`, `console.rs`) share.

use std::net::TcpListener;
use std::process::Child;

/// Kills the server when the test ends (or fails before stopping it).
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
