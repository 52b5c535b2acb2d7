//! Writes the client code upstream etcd-client's build script would write into
//! `OUT_DIR` (same protos, same options: no server code) into the directory given
//! as the second argument; the first is the proto root.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "etcd/api/authpb/auth.proto",
    "etcd/api/etcdserverpb/rpc.proto",
    "etcd/api/mvccpb/kv.proto",
    "etcd/server/etcdserver/api/v3election/v3electionpb/v3election.proto",
    "etcd/server/etcdserver/api/v3lock/v3lockpb/v3lock.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(root), Some(out)) = (args.next().map(PathBuf::from), args.next().map(PathBuf::from)) else {
        return Err("usage: etcd-client-regen PROTO_ROOT OUT_DIR".into());
    };
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    tonic_prost_build::configure().build_server(false).out_dir(&out).compile_protos(&files, &[root])?;
    Ok(())
}
