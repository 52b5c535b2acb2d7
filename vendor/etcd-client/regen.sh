#!/bin/sh
# Regenerates src/rpc/generated/ from proto/ with tonic-prost-build, as upstream
# etcd-client's build.rs does at every build. Needs protoc (apt-get install
# protobuf-compiler libprotobuf-dev) but only here: lbdns builds from the committed
# output. Run it after changing proto/ or the tonic/prost versions, then commit.
set -eu
cd "$(dirname "$0")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo run --quiet --manifest-path regen/Cargo.toml --target-dir "${TMPDIR:-/tmp}/etcd-client-regen" -- proto "$out"
# Only the packages src/rpc/pb.rs includes (the google.api and openapiv2 options
# the protos import carry no RPCs).
for pkg in authpb etcdserverpb mvccpb v3electionpb v3lockpb; do
  cp "$out/$pkg.rs" "src/rpc/generated/$pkg.rs"
done
git diff --stat -- src/rpc/generated/ || true
