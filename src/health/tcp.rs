//! Connecting to a member, from `[health] source_address` when one is set of
//! the member's family: the `tcp` check, and the start of every http(s) one.

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

/// The probe source address for `target`, if one is set of its family.
pub fn source_for(source: Option<IpAddr>, target: IpAddr) -> Option<IpAddr> {
    source.filter(|s| s.is_ipv4() == target.is_ipv4())
}

pub(super) async fn tcp_connect(target: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(src) = source_for(source, target.ip()) else { return TcpStream::connect(target).await };
    let socket = if target.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.bind(SocketAddr::new(src, 0))?;
    socket.connect(target).await
}
