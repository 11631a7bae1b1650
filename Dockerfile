# The operator image: `docker build -t REGISTRY/gatehouse:0.1.0 .`
#
# Builder: the official Rust image of the toolchain Cargo.toml declares
# (rust-version = 1.89). The binary is linked statically against glibc
# (crt-static), so the final image needs no libc, no shell, nothing but the binary;
# with jemalloc as its allocator (feature `jemalloc`, see docs/performance.md).
FROM rust:1.89-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
# include_str! pulls the admission policies into the binary.
COPY config/admission ./config/admission
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --features jemalloc --bin gatehouse --target x86_64-unknown-linux-gnu \
 && cp target/x86_64-unknown-linux-gnu/release/gatehouse /gatehouse \
 && strip /gatehouse

# distroless "static": CA certificates, /etc/passwd with nonroot (65532), no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /gatehouse /usr/local/bin/gatehouse
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["run"]
