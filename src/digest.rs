//! Hex digests, one way for every place that prints one: item names, the
//! issued-spec digest, the certification report's checksum, webhook signatures.

/// Lowercase hex of the bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lowercase hex SHA-256 of the bytes, as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}
